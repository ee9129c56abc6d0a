"""Token counts of the qwen3_vl and pooling compressors against the tensors they really run, and
token-budgeted calls giving the same memory and relevance as calls cut by segment count alone."""

from __future__ import annotations

import json

import pytest
import torch

from tempo_kit.compressors.base import padded_tokens
from tempo_kit.compressors.pooling import PoolingCompressor
from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
from tempo_kit.errors import ConfigError
from tempo_kit.model import TempoModel
from tempo_kit.model.compression import compress_samples
from tempo_kit.types import Segments
from tempo_kit.video import make_segments

K_MAX = 6


def video(num, size, seed, window=4, source=None):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=generator)
    frame_times = torch.arange(num * window, dtype=torch.float64).view(num, window) / 2.0
    return Segments(frames, frame_times, frame_times.mean(1), kind="video", source=source)


def short_tail():
    """Two windows of 8 frames, the last holding 3 real frames (2 temporal patches, not 4)."""
    generator = torch.Generator().manual_seed(7)
    frames = torch.randint(0, 256, (11, 64, 64, 3), dtype=torch.uint8, generator=generator)
    return make_segments(frames, window=8, frame_times=torch.arange(11, dtype=torch.float64) / 2.0, time_base="container")


def image(kind="image"):
    frames = torch.randint(0, 256, (1, 1, 80, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    return Segments(frames, torch.zeros(1, 1), torch.zeros(1), kind=kind)


#: videos of two geometries (4:3-ish and square, so different visual token counts), a short last
#: window, an image; queries of different lengths
SAMPLES = [video(3, (64, 96), 2), video(4, (128, 128), 3), short_tail(), image()]
QUERIES = ["short?", "a much longer question about which shape appears first and its colour?", "mid", "What colour?"]


@pytest.fixture(scope="module")
def svlm(tiny_checkpoints):
    """Eager attention: its kernels give each row the same bits whatever the batch holds."""
    torch.manual_seed(0)
    return Qwen3VLCompressor(
        str(tiny_checkpoints["svlm"]), k_max=K_MAX, segment_batch_size=4, dtype="float32", attn_implementation="eager"
    ).eval()


def recorded_calls(module, run):
    """``run()`` with a hook recording, per forward of ``module``, what it was given."""
    seen = []
    hook = module.register_forward_pre_hook(lambda m, args, kwargs: seen.append((args, kwargs)), with_kwargs=True)
    try:
        with torch.no_grad():
            out = run()
    finally:
        hook.remove()
    return out, seen


def test_qwen3_vl_counts_its_sequences_and_budgeted_calls_equal_count_only_calls_exactly(svlm):
    with torch.no_grad():
        by_count = compress_samples(svlm, SAMPLES, QUERIES)
    counts = [c for s, q in zip(SAMPLES, QUERIES) for c in svlm.segment_tokens(s, q)]
    assert len(set(counts)) >= 4  # geometry, window length, image slot and query all change it
    budget = 3 * max(counts)
    svlm.call_token_budget = budget
    try:
        by_tokens, seen = recorded_calls(svlm.svlm, lambda: compress_samples(svlm, SAMPLES, QUERIES))
    finally:
        svlm.call_token_budget = None
    masks = [kwargs["attention_mask"] for _, kwargs in seen]
    # each row's real length: prompt, time tags, visual tokens, query and the k_max memory tokens
    assert [int(n) for mask in masks for n in mask.sum(1)] == counts
    assert all(mask.numel() <= budget for mask in masks)  # the padded batch the SVLM ran
    assert [len(mask) for mask in masks] != [4, 4, 2]  # the budget, not the count, cut these calls
    assert torch.equal(by_tokens.memory, by_count.memory)
    assert torch.equal(by_tokens.relevance, by_count.relevance)
    assert by_tokens.num_segments == by_count.num_segments == [3, 4, 2, 1]


def test_qwen3_vl_refuses_a_segment_over_the_budget_before_running(svlm):
    longest = max(svlm.segment_tokens(SAMPLES[1], QUERIES[1]))
    svlm.call_token_budget = longest - 1
    try:
        with pytest.raises(ConfigError, match=rf"needs {longest} tokens .*call_token_budget={longest - 1}"):
            recorded_calls(svlm.svlm, lambda: compress_samples(svlm, SAMPLES, QUERIES))
    finally:
        svlm.call_token_budget = None


def test_pooling_counts_the_patches_its_tower_runs_and_keeps_results(tiny_checkpoints):
    pooling = PoolingCompressor(str(tiny_checkpoints["svlm"]), k_max=4, dtype="float32").eval()
    samples = [video(3, (64, 96), 2), video(2, (128, 128), 3)]
    counts = [c for s in samples for c in pooling.segment_tokens(s, "")]
    assert counts == [2 * 4 * 6] * 3 + [2 * 8 * 8] * 2  # grid_t · grid_h · grid_w
    by_count, seen = recorded_calls(pooling.visual, lambda: compress_samples(pooling, samples, ["", ""]))
    assert [int(args[0].shape[0]) for args, _ in seen] == [sum(counts)]
    pooling.call_token_budget = 200  # the tower packs patches: a call costs their sum
    by_tokens, seen = recorded_calls(pooling.visual, lambda: compress_samples(pooling, samples, ["", ""]))
    assert [int(args[0].shape[0]) for args, _ in seen] == [144, 128, 128]
    torch.testing.assert_close(by_tokens.memory, by_count.memory, atol=1e-6, rtol=1e-5)


def test_the_budget_survives_save_and_load(tiny_checkpoints, tmp_path):
    config = {
        "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 4, "call_token_budget": 900},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
    }
    model = TempoModel.from_config(config)
    assert model.compressor.call_token_budget == 900
    folder = model.save_pretrained(tmp_path / "model")
    stored = json.loads((folder / "tempo_config.json").read_text())
    assert stored["compressor"]["call_token_budget"] == 900
    assert TempoModel.from_pretrained(folder).compressor.call_token_budget == 900
    lowered = TempoModel.from_pretrained(folder, compressor={"call_token_budget": 500})
    assert lowered.compressor.call_token_budget == 500
    with pytest.raises(ConfigError, match=r"compressor.call_token_budget='lots' must be a positive integer"):
        TempoModel.from_pretrained(folder, compressor={"call_token_budget": "lots"})


@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_the_constructor_refuses_a_bad_budget(tiny_checkpoints, budget):
    with pytest.raises(ConfigError, match="compressor call_token_budget=.* must be a positive integer"):
        PoolingCompressor(str(tiny_checkpoints["svlm"]), call_token_budget=budget)


def test_padded_cost_of_a_call_is_rows_times_width(svlm):
    counts = svlm.segment_tokens(SAMPLES[1], QUERIES[1]) + svlm.segment_tokens(SAMPLES[0], QUERIES[0])
    assert svlm.call_tokens(counts) == padded_tokens(counts) == len(counts) * max(counts)


@pytest.mark.slow
def test_session_prefix_calls_follow_the_budget_and_answer_the_same(tiny_tempo_dir):
    from tempo_kit.inference.api import TempoPipeline

    pipeline = TempoPipeline.from_pretrained(
        tiny_tempo_dir, compressor={"dtype": "float32", "attn_implementation": "eager"}
    )
    compressor = pipeline.model.compressor
    frames = torch.randint(0, 256, (21, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    question, kwargs = "Where is the red circle?", {"budget": 30, "max_new_tokens": 2}
    results, calls = {}, {}
    for budget in (None, "two segments"):
        with pipeline.open(frames=frames) as session:
            counts = compressor.segment_tokens(session.segments, question, None)
            compressor.call_token_budget = None if budget is None else 2 * max(counts)
            try:
                results[budget], seen = recorded_calls(compressor.svlm, lambda: session.ask(question, **kwargs))
            finally:
                compressor.call_token_budget = None
        masks = [k["attention_mask"] for _, k in seen if k.get("attention_mask") is not None]
        calls[budget] = [len(m) for m in masks]
        assert all(m.numel() <= 2 * max(counts) for m in masks) or budget is None
    assert calls[None] == [3, 3] and calls["two segments"] == [2, 2, 1, 1]  # prefixes, then questions
    assert torch.equal(results[None].allocation.relevance, results["two segments"].allocation.relevance)
    assert results[None].answer == results["two segments"].answer


def test_infer_takes_the_budget_and_refuses_a_bad_one(tiny_tempo_dir, tiny_needle_benchmark, tmp_path, capsys):
    from tempo_kit.cli import main

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    command = ["infer", "--video", str(tiny_needle_benchmark.parent / row["video"]), "--query", "q", "--no-progress"]
    assert main([*command, "--model", str(tmp_path / "absent"), "--call-token-budget", "0"]) == 2
    err = capsys.readouterr().err  # refused before the (missing) model is looked for
    assert err.count("\n") == 1 and "--call-token-budget 0: the most tokens one compressor call holds must be ≥ 1" in err
    # a budget below one segment reaches the compressor: refused before its first call
    assert main([*command, "--model", str(tiny_tempo_dir), "--call-token-budget", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over call_token_budget=10; raise model.compressor.call_token_budget" in err

