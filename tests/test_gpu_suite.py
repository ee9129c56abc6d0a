"""The GPU suite's code paths, on CPU at tiny shapes (``--smoke``): every part runs and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


@pytest.mark.slow
def test_gpu_suite_smoke_runs_every_part(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SUITE), "--smoke", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["mode"].startswith("smoke")
    assert [row["segment_batch_size"] for row in results["compressor"]["compressor"]] == [4]
    e2e = results["end_to_end"]
    assert set(e2e) == {"kit_exact_overlapped", "kit_fast_overlapped", "released_style_baseline"}
    # same pixels, same model: the overlapped kit answers as the released-style baseline does
    assert e2e["kit_exact_overlapped"]["answer"] == e2e["released_style_baseline"]["answer"]
    assert e2e["kit_exact_overlapped"]["visual_tokens"] == e2e["released_style_baseline"]["visual_tokens"]
    for name in ("train_stage2_fsdp2", "train_stage3_lora", "train_stage2_packed"):
        assert results[name]["strategy"] == "fsdp" and results[name]["step_seconds_median"] > 0
    packed = results["train_stage2_packed"]
    assert packed["mixed_lengths"] and packed["attn_implementation"] == "sdpa"
    assert "model.compressor.pack_segments=true" in packed["overrides"]
    assert results["train_stage3_lora"]["recipe"] == "stage3_lora"
    assert results["train_stage3_lora"]["trainable"]["llm"] == "input_grad"  # LoRA: frozen base weights
    assert results["decode"]["pil"]["frames"] == results["decode"]["decoder"]["frames"] == 16
    assert all(goal["met"] is None for goal in results["goals"].values())  # nothing claimed on CPU
