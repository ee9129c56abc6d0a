"""VideoSession: many questions about one video, follow-ups from the SVLM prefix cache (tiny model, CPU)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.inference.api import TempoPipeline
from tempo_kit.model import TempoModel

FIRST = "Where is the red circle?"
LONGER = "What colour is the square that appears near the end of the video, and where does it move?"
K_MAX = 16  # the tiny_tempo_dir model's


@pytest.fixture(scope="module")
def pipeline(tiny_tempo_dir):
    """Micro-batches of 2 segments, so a 3-segment video takes two compressor calls."""
    return TempoPipeline.from_pretrained(tiny_tempo_dir, compressor={"segment_batch_size": 2, "dtype": "float32"})


@pytest.fixture(scope="module")
def frames():
    """21 frames: windows of 8, 8 and a short last one of 5."""
    return torch.randint(0, 256, (21, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def video_file(tiny_needle_benchmark):
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    return tiny_needle_benchmark.parent / row["video"]


def suffix_tokens(pipeline, question):
    return len(pipeline.model.compressor.sequences.suffix(question)) + K_MAX


def assert_same(cached, uncached):
    assert cached.allocation.counts.tolist() == uncached.allocation.counts.tolist()
    assert (cached.allocation.relevance - uncached.allocation.relevance).abs().max() < 1e-5
    assert cached.answer == uncached.answer and cached.tokens_used == uncached.tokens_used


@pytest.mark.slow
def test_follow_ups_equal_full_recompression_and_compute_fewer_svlm_tokens(pipeline, frames):
    kwargs = {"budget": 30, "max_new_tokens": 3}
    with pipeline.open(frames=frames) as session:
        assert len(session.segments) == 3 and session.segments.lengths.tolist() == [8, 8, 5]
        first = session.ask(FIRST, **kwargs)
        prefix_tokens = sum(p.length for p in session._prefixes)
        assert session.cached_segments == 3 and session.cache_bytes == sum(p.nbytes for p in session._prefixes)
        follow = session.ask(LONGER, **kwargs)
        again = session.ask(FIRST, **kwargs)
    assert_same(first, pipeline.answer(frames=frames, query=FIRST, **kwargs))
    assert_same(follow, pipeline.answer(frames=frames, query=LONGER, **kwargs))
    assert_same(again, first)
    # first: prefixes + question part of all 3 segments; follow-ups: the question part only
    assert first.svlm_tokens == prefix_tokens + 3 * suffix_tokens(pipeline, FIRST)
    assert follow.svlm_tokens == 3 * suffix_tokens(pipeline, LONGER) < first.svlm_tokens
    assert again.svlm_tokens == first.svlm_tokens - prefix_tokens
    assert first.reused == () and follow.reused == ("decode", "prefix")
    assert follow.timings["decode"] == 0.0 and set(follow.timings) == {"decode", "compress", "allocate", "assemble", "generate", "total"}
    assert follow.to_dict()["svlm_tokens"] == follow.svlm_tokens
    assert session.closed
    with pytest.raises(ConfigError, match="session is closed; open a new one"):
        session.ask(FIRST)


@pytest.mark.slow
def test_cache_on_cpu_under_a_cap_caches_what_fits_and_stays_exact(pipeline, frames, caplog):
    with pipeline.open(frames=frames) as probe:
        probe.ask(FIRST, max_new_tokens=1)
        one = probe._prefixes[0].nbytes
    caplog.set_level(logging.WARNING, logger="tempo_kit.inference")
    session = pipeline.open(frames=frames, cache_device="cpu", max_cache_bytes=one + 1)
    first = session.ask(FIRST, budget=30, max_new_tokens=2)
    follow = session.ask(LONGER, budget=30, max_new_tokens=2)
    assert session.cached_segments == 1 and session.cache_bytes == one
    assert session._prefixes[0].keys[0].device.type == "cpu"
    full = [m for m in caplog.messages if "prefix cache full at max_cache_bytes" in m]
    assert len(full) == 1 and "segment 1 and later (of 3)" in full[0]
    # segments 1 and 2 are recompressed: their prefixes count again
    uncached_prefixes = first.svlm_tokens - 3 * suffix_tokens(pipeline, FIRST) - session._prefixes[0].length
    assert follow.svlm_tokens == uncached_prefixes + 3 * suffix_tokens(pipeline, LONGER)
    assert_same(follow, pipeline.answer(frames=frames, query=LONGER, budget=30, max_new_tokens=2))


def test_a_new_system_prompt_rebuilds_the_prefixes(pipeline, frames):
    session = pipeline.open(frames=frames)
    first = session.ask(FIRST, max_new_tokens=1)
    standard = session.ask(FIRST, relevance_prompt="standard", max_new_tokens=1)
    assert standard.svlm_tokens < first.svlm_tokens  # the standard prompt is shorter, all prefixes recomputed
    assert standard.reused == ("decode",)
    reference = pipeline.answer(frames=frames, query=FIRST, relevance_prompt="standard", max_new_tokens=1)
    assert_same(standard, reference)


def test_bad_input_gets_clear_errors(pipeline, frames, video_file, tmp_path):
    with pytest.raises(ConfigError, match=r"max_cache_bytes=100 is smaller than the prefix cache of one segment"):
        pipeline.open(frames=frames, max_cache_bytes=100).ask(FIRST, max_new_tokens=1)
    with pytest.raises(ConfigError, match="max_cache_bytes must be a positive number of bytes"):
        pipeline.open(frames=frames, max_cache_bytes=0)
    with pytest.raises(ConfigError, match="open\\(\\) needs exactly one of video="):
        pipeline.open()
    with pytest.raises(ConfigError, match=r"unknown argument 'windw' \(did you mean 'window'\?\)"):
        pipeline.open(frames=frames, windw=4)
    session = pipeline.open(frames=frames)
    with pytest.raises(ConfigError, match="window=…, which is fixed when the session is opened"):
        session.ask(FIRST, window=4)
    with pytest.raises(ConfigError, match="query is empty"):
        session.ask("  ")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video_file.read_bytes()[:4000])
    with pytest.raises(MediaError, match=f"cannot open video {truncated}"):
        pipeline.open(truncated)


@pytest.mark.slow
def test_a_compressor_without_prefix_cache_recompresses_and_says_so_once(tiny_checkpoints, frames, caplog):
    model = TempoModel.from_config(
        {
            "compressor": {"name": "pooling", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 6},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
            "allocator": {"name": "uniform"},
        }
    )
    pipeline = TempoPipeline(model)
    caplog.set_level(logging.WARNING, logger="tempo_kit.inference")
    results = [pipeline.open(frames=frames).ask(FIRST, budget=12, max_new_tokens=2) for _ in range(2)]
    told = [m for m in caplog.messages if "has no prefix cache" in m]
    assert told == ["compressor PoolingCompressor has no prefix cache: every question recompresses the whole video"]
    reference = pipeline.answer(frames=frames, query=FIRST, budget=12, max_new_tokens=2)
    assert all(r.svlm_tokens is None for r in results)
    assert results[0].allocation.counts.tolist() == reference.allocation.counts.tolist() == [4, 4, 4]
    assert results[1].answer == reference.answer


@pytest.mark.slow
def test_chat_command_answers_follow_ups_from_the_cache(tiny_tempo_dir, video_file, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "tempo_kit.cli", "chat", "--model", str(tiny_tempo_dir), "--video", str(video_file)]
    questions = f"{FIRST}\n\n--budget\n{LONGER}\nexit\nnever asked\n"
    done = subprocess.run(
        [*command, "--budget", "40", "--max-new-tokens", "2", "--no-progress"],
        input=questions, capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    turns = [line for line in done.stdout.splitlines() if line.startswith("Q: ")]
    assert turns == [f"Q: {FIRST}", "Q: --budget", f"Q: {LONGER}"]
    svlm = [int(line.split()[2]) for line in done.stdout.splitlines() if line.startswith("SVLM tokens:")]
    assert len(svlm) == 3 and svlm[1] < svlm[0] and svlm[2] < svlm[0]
    assert "reused: decode, prefix" in done.stdout and "3 questions answered; prefix cache held 3/3 segments" in done.stdout
    bad = subprocess.run(
        [*command, "--max-cache-gb", "0"], input="", capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "tempo-kit chat: error: --max-cache-gb 0.0: the prefix cache cap must be > 0 GiB"
    missing = Path(tmp_path) / "missing.mp4"
    bad = subprocess.run(
        [*command[:-1], str(missing)], input="", capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode == 2 and bad.stderr.strip() == f"tempo-kit chat: error: --video {missing}: file not found; check the path"
