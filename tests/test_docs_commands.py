"""The hub, model card, predict and sweep pages' commands, run as the docs print them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from doc_commands import ROOT, doc_command
from hub_cache import use_cache

from tempo_kit.cli import main


@pytest.fixture
def demo_folder(tiny_tempo_dir, tiny_needle_benchmark, tmp_path, monkeypatch):
    """A folder laid out as the demo leaves it: outputs/demo/final and outputs/synthetic/val.jsonl."""
    shutil.copytree(tiny_tempo_dir, tmp_path / "outputs" / "demo" / "final")
    synthetic = tmp_path / "outputs" / "synthetic"
    shutil.copytree(tiny_needle_benchmark.parent / "videos", synthetic / "videos")
    first = tiny_needle_benchmark.read_text().splitlines()[0]
    (synthetic / "val.jsonl").write_text(first + "\n")
    monkeypatch.chdir(tmp_path)
    use_cache(monkeypatch, tmp_path / "hub")
    return tmp_path


def test_hub_page_push_dry_run(demo_folder, capsys):
    argv = doc_command("hub/index.md", "tempo-kit push outputs/demo/final my-org/tempo-demo --dry-run")
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert "README.md\t" in out and "config.json\t" in out and "would be uploaded to my-org/tempo-demo" in out


def test_model_card_page_command(demo_folder):
    argv = doc_command("hub/model_card.md", "python -c")
    done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=300, cwd=demo_folder,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"  # the tiny checkpoints come from no hub id: no base_model is claimed


@pytest.mark.slow
def test_predict_page_command(demo_folder, capsys):
    argv = doc_command("commands/predict.md", "tempo-kit predict")
    assert main(argv[1:]) == 0
    rows = (demo_folder / "outputs" / "demo" / "predictions" / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["reference"] is not None


def test_sweep_page_print_gives_each_combination(demo_folder, capsys):
    argv = doc_command("training/sweeps.md", "tempo-kit fit --recipe demo --multirun")
    assert "--print" in argv
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert out.count("# multirun ") == 4 and "outputs/demo/3" in out


def test_wandb_sweep_yaml_drives_fit_through_the_agent_s_expansion(demo_folder, capsys, monkeypatch):
    """The command a W&B agent builds from examples/wandb_sweep.yaml (its own expansion code)
    resolves to a recipe holding the sampled values and a per-run output folder."""
    import yaml
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = yaml.safe_load((ROOT / "examples" / "wandb_sweep.yaml").read_text())
    values = {key: {"value": spec["values"][1]} for key, spec in sweep["parameters"].items()}
    sweep_vars = create_sweep_command_args({"args": values})
    sweep_vars["env"] = ["/usr/bin/env"]
    command: list[str] = []
    for item in sweep["command"]:  # as wandb_agent.Agent._command_run substitutes
        command += sweep_vars.get(item[2:-1], []) if item.startswith("${") and item.endswith("}") and item[2:-1] in sweep_vars else [item]
    assert command[:3] == ["/usr/bin/env", "tempo-kit", "fit"]
    monkeypatch.setenv("WANDB_RUN_ID", "abc123")
    assert main([*command[2:], "--print"]) == 0
    out = capsys.readouterr().out
    assert "output_dir: outputs/sweep/abc123" in out and "decoder: 0.003" in out and "budget: 256" in out
