"""Two single-process "nodes" launched by ``torchrun --nnodes 2`` (rendezvous on localhost) train
under FSDP2 from prepared shards, checkpoint, resume, export, and the export answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_run_overrides

from tempo_kit.data.prepare import prepare_file

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_nodes(args: list[str]) -> None:
    """``torchrun --nnodes 2 --nproc-per-node 1`` once per node, as each node of a job runs it."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
             "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
             "-m", "tempo_kit.cli", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=900)[0] for node in nodes]
    for node, output in zip(nodes, outputs):
        assert node.returncode == 0, output[-3000:]


@pytest.mark.slow
def test_two_torchrun_nodes_train_checkpoint_resume_and_export_from_shards(
    tiny_checkpoints, tiny_needle_benchmark, tmp_path
):
    prepare_file(tiny_needle_benchmark, tmp_path / "shards", shard_rows=2, progress=False)
    out = tmp_path / "run"
    args = [
        "fit", "--recipe", str(DEMO), *tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark),
        "data.train_files=null", f"data.shards={tmp_path / 'shards'}", f"run.output_dir={out}",
        "trainer.num_nodes=2", "trainer.devices=1", "trainer.strategy.name=fsdp",
        "trainer.strategy.process_group_backend=gloo", "trainer.global_batch_size=2",
        "trainer.checkpoint_every_n_steps=1",
    ]  # fmt: skip
    two_nodes([*args, "trainer.max_steps=1", "run.export_final=false"])
    assert (out / "checkpoints" / "last.ckpt").is_dir()  # FSDP2's sharded checkpoint folder
    two_nodes([*args, "trainer.max_steps=2", "--resume", "last"])
    meta = torch.load(out / "checkpoints" / "last.ckpt" / "meta.pt", weights_only=False)
    assert meta["global_step"] == 2 and meta["TempoDataModule"]["train_world_size"] == 2

    from tempo_kit.inference.api import TempoPipeline

    video = next((tiny_needle_benchmark.parent / "videos").glob("*.mp4"))
    result = TempoPipeline.from_pretrained(out / "final").answer(video=str(video), query="What colour?", max_new_tokens=4)
    assert isinstance(result.answer, str) and result.allocation.counts.sum() > 0
