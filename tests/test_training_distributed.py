"""DDP on CPU (gloo) matches one process, and a killed run resumes with the same state.

Both use the CLI as a user would. The data set has as many rows as the global batch, so every
optimizer step sees the same samples however they are split over processes and micro-batches.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from tiny_runs import tiny_run_overrides

from tempo_kit.recipes import load_recipe, to_dict
from tempo_kit.training.commands import CHECKPOINT_DIR, LAST_CHECKPOINT, run_recipe

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def tiny_overrides(tiny_checkpoints, data: Path, out: Path) -> list[str]:
    return [
        *tiny_run_overrides(tiny_checkpoints, data),
        f"run.output_dir={out}",
        "run.export_final=false",
        "trainer.global_batch_size=4",
        "trainer.log_every_n_steps=1",
    ]


def losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["train/loss"] for row in rows if "train/loss" in row}


def cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "tempo_kit.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    common = ["fit", "--recipe", str(DEMO), "trainer.max_steps=3"]
    one, two = tmp_path / "one", tmp_path / "two"
    cli([*common, *tiny_overrides(tiny_checkpoints, tiny_needle_benchmark, one), "trainer.devices=1"])
    cli(
        [
            *common,
            *tiny_overrides(tiny_checkpoints, tiny_needle_benchmark, two),
            "trainer.devices=2",
            "trainer.strategy.name=ddp",
            "trainer.strategy.process_group_backend=gloo",
            "run.export_final=true",  # rank 0 writes, the other rank waits
        ]
    )
    assert (two / "final" / "tempo_config.json").is_file()
    single, ddp = losses(one), losses(two)
    assert sorted(single) == sorted(ddp) == [1, 2, 3]
    for step in single:  # step 1: same initial weights; steps 2-3: same gradients were applied
        assert ddp[step] == pytest.approx(single[step], rel=1e-4, abs=1e-5), (step, single, ddp)
    assert single[3] != single[1]  # the weights did move


class KillAfter(Callback):
    """Stops the run like a crash would, right after the checkpoint of step ``step`` was written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


class ResumeProbe(Callback):
    def on_train_start(self, trainer, pl_module):
        self.step = trainer.global_step
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())  # live tensors otherwise
        self.scheduler = copy.deepcopy(trainer.lr_scheduler_configs[0].scheduler.state_dict())

    def on_train_end(self, trainer, pl_module):
        self.final = {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_killed_run_resumes_with_same_optimizer_and_scheduler(
    tiny_checkpoints, tiny_needle_benchmark, tmp_path
):
    overrides = tiny_overrides(tiny_checkpoints, tiny_needle_benchmark, tmp_path / "run")
    overrides += ["trainer.micro_batch_size=2", "trainer.max_steps=4", "trainer.checkpoint_every_n_steps=2"]
    recipe = to_dict(load_recipe(DEMO, overrides))

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_recipe(recipe, "fit", callbacks=[KillAfter(2)])
    saved = torch.load(tmp_path / "run" / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=False)
    assert saved["global_step"] == 2

    probe = ResumeProbe()
    run_recipe(recipe, "fit", resume="last", callbacks=[probe])
    assert probe.step == 2
    assert _same(probe.optimizer, saved["optimizer_states"][0])
    assert _same(probe.scheduler, saved["lr_schedulers"][0])
    assert probe.scheduler["last_epoch"] == 2

    straight = ResumeProbe()
    other = to_dict(load_recipe(DEMO, [*overrides, f"run.output_dir={tmp_path / 'straight'}"]))
    run_recipe(other, "fit", callbacks=[straight])
    for name, value in straight.final.items():  # the interrupted run ends where the straight one does
        assert torch.allclose(probe.final[name], value, rtol=1e-4, atol=1e-6), name
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4]


def test_resume_without_checkpoint_says_what_to_do(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    from tempo_kit.errors import CheckpointError

    recipe = to_dict(load_recipe(DEMO, tiny_overrides(tiny_checkpoints, tiny_needle_benchmark, tmp_path)))
    with pytest.raises(CheckpointError, match="no run has saved a checkpoint .* start without --resume"):
        run_recipe(recipe, "fit", resume="last")

    from tempo_kit.cli import main

    overrides = tiny_overrides(tiny_checkpoints, tiny_needle_benchmark, tmp_path)
    assert (
        main(["fit", "--recipe", str(DEMO), "--resume", *overrides]) == 2
    )  # overrides after a bare --resume
    assert main(["validate", "--recipe", str(DEMO), "--resume", "last", *overrides]) == 2
