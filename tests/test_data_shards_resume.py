"""kill -9 during a fit that streams prepared shards, then ``--resume``: the same final weights as
a straight run (the same remaining batches, since the weights depend on every batch's order)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import torch
from test_reliability_runs import final_tensors, fit_command

from tempo_kit.data.prepare import prepare_file


@pytest.mark.slow
def test_kill_9_during_a_shard_fit_then_resume_equals_a_straight_run(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    prepare_file(tiny_needle_benchmark, tmp_path / "shards", shard_rows=2, progress=False)
    streaming = ["data.train_files=null", f"data.shards={tmp_path / 'shards'}"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run([*fit_command(tiny_checkpoints, tiny_needle_benchmark, straight), *streaming], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    run = subprocess.Popen(
        [*fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), *streaming],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 600
    while not list(killed.glob("checkpoints/step000000[2-9].ckpt")) and run.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    step = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 1 <= step < 6, step  # killed inside the epoch (6 steps of 2 samples)
    resumed = subprocess.run(
        [*fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), *streaming, "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = final_tensors(straight), final_tensors(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


DDP = ["trainer.devices=2", "trainer.strategy.name=ddp", "trainer.strategy.process_group_backend=gloo"]


@pytest.mark.slow
def test_kill_9_during_a_two_process_shard_fit_then_resume_equals_a_straight_run(
    tiny_checkpoints, tiny_needle_benchmark, tmp_path
):
    prepare_file(tiny_needle_benchmark, tmp_path / "shards", shard_rows=2, progress=False)
    streaming = ["data.train_files=null", f"data.shards={tmp_path / 'shards'}", *DDP]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run([*fit_command(tiny_checkpoints, tiny_needle_benchmark, straight), *streaming], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    run = subprocess.Popen(
        [*fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), *streaming],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 600
    while not list(killed.glob("checkpoints/step000000[2-9].ckpt")) and run.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # both ranks
    run.wait()
    state = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)
    assert 1 <= state["global_step"] < 6, state["global_step"]
    assert state["TempoDataModule"]["train_world_size"] == 2
    resumed = subprocess.run(
        [*fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), *streaming, "--resume"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = final_tensors(straight), final_tensors(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
