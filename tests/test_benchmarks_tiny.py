"""Both benchmark scripts run end to end with ``--tiny`` (as a user runs them, in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def launch(script: str, out: Path, checkpoints: dict, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / script),
        "--tiny",
        "--svlm",
        str(checkpoints["svlm"]),
        "--llm",
        str(checkpoints["llm"]),
        "--json",
        str(out),
        *extra,
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def results(tiny_checkpoints, tmp_path_factory):
    """Both scripts, started together (each is a few seconds of model work)."""
    out = tmp_path_factory.mktemp("bench")
    runs = {
        "train": launch(
            "bench_train_step.py", out / "train.json", tiny_checkpoints, "--peak-tflops", "1", "--steps", "1"
        ),
        "compressor": launch(
            "bench_compressor.py",
            out / "compressor.json",
            tiny_checkpoints,
            "--batch-sizes",
            "1",
            "4",
            "--repeats",
            "1",
        ),
    }
    loaded = {}
    for name, process in runs.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-4000:]
        loaded[name] = (json.loads((out / f"{name}.json").read_text()), output)
    return loaded


def test_train_step_benchmark(results):
    data, output = results["train"]
    assert "tiny" in data["mode"] and "| samples_per_s |" in output
    assert data["steps_measured"] == 1 and len(data["step_seconds_all"]) == 2
    assert data["segments_per_step"] == 2  # 8 frames in 4-frame segments
    assert data["k_max"] == 16
    assert data["llm_tokens_per_sample"] > 2 * 16  # both segments' memory reached the LLM
    parts = data["forward_tflops_by_part"]
    assert all(parts[k] > 0 for k in ("vision_patch_embed", "vision", "svlm", "projector", "llm"))
    # everything learns in stage 2: 3x the forward, minus the patch embedding's input gradient
    expected = 3 * parts["forward"] - parts["vision_patch_embed"]
    assert data["model_tflops_per_step_per_device"] == pytest.approx(expected, rel=1e-9)
    achieved = data["model_tflops_per_step_per_device"] / data["step_seconds_median"]
    assert data["mfu"] == pytest.approx(achieved / 1.0, rel=1e-9)  # --peak-tflops 1
    assert data["samples_per_s"] == pytest.approx(1 / data["step_seconds_median"], rel=1e-9)


def test_compressor_benchmark(results):
    data, output = results["compressor"]
    assert "segments/s" in output
    rows = data["compressor"]
    assert [r["segment_batch_size"] for r in rows] == [1, 4]
    assert data["segments"] == 4  # 32 frames in 8-frame segments
    assert all(r["segments_per_s"] > 0 for r in rows)
    # the same real tokens whatever the micro-batching (padding is not model work)
    assert len({round(r["forward_tflops"], 15) for r in rows}) == 1
    e2e = data["end_to_end"]
    assert set(e2e["seconds"]) >= {"compress", "allocate", "generate", "total"}
    assert 0 < e2e["visual_tokens"] <= 64  # the tiny budget
    assert e2e["prefill_seconds"] > 0 and "ms_per_new_token" in e2e


def test_analytic_flops_counts_the_real_shapes(tmp_path):
    out = tmp_path / "flops.json"
    subprocess.run([sys.executable, "benchmarks/analytic_flops.py", "--json", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    figures = json.loads(out.read_text())
    sample = figures["train_sample"]
    # 4 frames of 512×256: 2 temporal patches × (16·32 patches / 2×2 merge) = 256 visual tokens
    assert sample["visual_tokens_per_segment"] == 256
    assert sample["svlm_tokens_per_segment"] > 256 + 128  # + memory tokens + prompt and query text
    forward = sample["forward_tflop"]
    # everything learns: 3× each part's forward, but 2× for the patch embedding (pixels need no grad)
    expected = 3 * (forward["forward"] - forward["vision_patch_embed"]) + 2 * forward["vision_patch_embed"]
    assert sample["step_tflop"] == pytest.approx(expected, rel=1e-9)
    mixed = figures["packed_compressor_calls"]
    # 128 + 64 frames in 4-frame windows, 34 frames (8 windows + one of 2), 128 frames: 89 segments
    assert [(c["segments"], c["calls"]) for c in mixed.values()] == [(89, 12), (89, 3)]
    for calls in mixed.values():  # packing never costs more, and the vision tower saves nothing
        assert calls["svlm_tokens"]["packed"] < calls["svlm_tokens"]["padded"]
        assert calls["compressor_tflop"]["padded"] - calls["compressor_tflop"]["packed"] == pytest.approx(
            calls["svlm_text_tflop"]["padded"] - calls["svlm_text_tflop"]["packed"], rel=1e-9
        )
    # calls filled in sample order mix lengths only across samples: bigger calls mix (and save) more
    assert mixed["32_segments_per_call"]["text_flops_ratio"] > mixed["8_segments_per_call"]["text_flops_ratio"] > 1
    question = figures["question_1024_frames"]
    assert question["llm_prompt_tokens"] > 8192 and question["total_tflop"] > question["compressor_tflop"]
