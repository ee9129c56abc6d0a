"""Fault suite, inputs a user types: each refused with one line naming the value and the fix, before
any work starts (``docs/concepts/reliability.md``'s class table)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_runs import tiny_run_overrides

from tempo_kit.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo.yaml"


def refused(capsys, *argv: str) -> str:
    """``tempo-kit ARGV``'s one error line (exit status 2, no traceback)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if ": error: " in line]  # beside it only Lightning's INFO lines
    return line


def test_every_verb_refuses_an_existing_file_where_its_output_folder_goes(
    capsys, tmp_path, tiny_checkpoints, tiny_needle_benchmark, tiny_tempo_dir
):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    fix = f"{taken} is a file, but a folder is written there; choose another path"
    runs = {
        "run.output_dir": ["fit", "--recipe", DEMO, *tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark),
                           f"run.output_dir={taken}"],
        "--output": ["eval", "--model", tiny_tempo_dir, "--annotations", tiny_needle_benchmark, "--output", taken],
        "recipes copy": ["recipes", "copy", "demo", taken],
    }
    for what, argv in runs.items():
        assert refused(capsys, *argv).endswith(f"error: {what} {fix}")
    route = ["route", "--model", tiny_tempo_dir, "--annotations", tiny_needle_benchmark, "--output", taken]
    assert refused(capsys, *route).endswith(f"error: --output {fix}")
    assert taken.read_text() == "not a folder"


def test_validate_into_a_running_fits_folder_is_refused_and_writes_nothing(
    capsys, tmp_path, tiny_checkpoints, tiny_needle_benchmark
):
    from tempo_kit.run_lock import run_lock

    out = tmp_path / "run"
    overrides = [*tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark), f"data.val_files={tiny_needle_benchmark}"]
    with run_lock(out, "fit"):  # a fit is running there
        line = refused(capsys, "validate", "--recipe", DEMO, *overrides, f"run.output_dir={out}")
    assert f"{out} is in use by `tempo-kit fit` (pid {os.getpid()}); wait for it to finish" in line
    assert sorted(p.name for p in out.iterdir()) == [".tempo-kit.lock"]  # no metrics.jsonl row, no recipe


def test_an_interpolation_to_a_missing_key_is_one_line_in_a_recipe_file_and_an_override(capsys, tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(f"base: {DEMO}\nrun:\n  output_dir: outputs/${{run.missing}}\n")
    for argv in (["--print"], []):
        line = refused(capsys, "fit", "--recipe", recipe, *argv)
        assert line.endswith(
            "run.output_dir: cannot resolve an interpolation: Interpolation key 'run.missing' not found; "
            "set that key or correct the ${...} reference"
        ), line
    line = refused(capsys, "fit", "--recipe", DEMO, "run.name=${nope.key}", "--print")
    assert "run.name: cannot resolve an interpolation: Interpolation key 'nope.key' not found" in line


def test_devices_this_machine_lacks_are_refused_before_any_work(capsys, tmp_path, tiny_checkpoints, tiny_needle_benchmark):
    import torch

    video = next((tiny_needle_benchmark.parent / "videos").iterdir())
    infer = ["infer", "--model", tmp_path / "not_loaded", "--video", video, "--query", "q"]
    line = refused(capsys, *infer, "--device", "tpu9")
    assert "--device tpu9: not a device name; use cpu, cuda, cuda:N or mps (usable here: cpu" in line
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first on a CPU machine
    assert f"--device {missing}: this machine has no such device" in refused(capsys, *infer, "--device", missing)
    if not torch.cuda.is_available():
        out = tmp_path / "run"
        argv = ["fit", "--recipe", DEMO, *tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark),
                f"run.output_dir={out}", "trainer.accelerator=gpu"]  # fmt: skip
        line = refused(capsys, *argv)
        assert "trainer.accelerator=gpu: this machine has no gpu (usable here: cpu" in line


@pytest.mark.slow
def test_resuming_a_checkpoint_of_another_shape_names_the_tensors(capsys, tmp_path, tiny_checkpoints, tiny_needle_benchmark):
    out = tmp_path / "run"
    fit = ["fit", "--recipe", DEMO, *tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark),
           f"run.output_dir={out}", "trainer.max_steps=1", "run.export_final=false"]  # fmt: skip
    assert main([str(a) for a in fit]) == 0
    capsys.readouterr()
    line = refused(capsys, *fit, "model.compressor.k_max=4", "--resume", "last")
    checkpoint = out / "checkpoints" / "last.ckpt"
    assert f"{checkpoint} was saved by a model of another shape: " in line
    assert "compressor.memory_tokens (8, 64) in the checkpoint, (4, 64) in the model" in line
    assert "use the recipe that wrote it" in line
