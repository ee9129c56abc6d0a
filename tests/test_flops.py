"""FLOP formulas checked against torch's FlopCounterMode on the tiny model, and real-shape sizes.

The tiny model runs with eager attention so that attention is plain matmuls the counter sees
(on CPU the fused SDPA kernel is not counted by FlopCounterMode). Tolerance: exact (relative 1e-9),
since both count the same matrix products.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tempo_kit.errors import ConfigError
from tempo_kit.flops import (
    PEAK_BF16_DENSE_FLOPS,
    FlopRecorder,
    StepFlops,
    decoder_flops,
    mfu,
    packed_lengths,
    peak_flops_for,
    projector_flops,
    vision_tower_flops,
)
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, Segments, TempoBatch

REL = 1e-9


def video(num, height, width, seed):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num, 4, height, width, 3), dtype=torch.uint8, generator=generator)
    times = torch.arange(num * 4, dtype=torch.float64).view(num, 4) / 2
    return Segments(frames, times, times.mean(1))


@pytest.fixture(scope="module")
def model(tiny_checkpoints):
    from tempo_kit.model import TempoModel

    torch.manual_seed(0)
    return TempoModel.from_config(
        {
            "compressor": {
                "name": "qwen3_vl",
                "pretrained": str(tiny_checkpoints["svlm"]),
                "k_max": 8,
                "segment_batch_size": 2,
                "attn_implementation": "eager",
            },
            "decoder": {
                "name": "hf_causal_lm",
                "pretrained": str(tiny_checkpoints["llm"]),
                "attn_implementation": "eager",
            },
            "budget": 64,
        }
    ).train()


@pytest.fixture(scope="module")
def batch(model):
    tokenizer = model.tokenizer
    rows = [
        encode_decoder_prompt(
            tokenizer, [Turn("user", "What colour?"), Turn("assistant", "red " * n)], has_visual=True
        )
        for n in (2, 6)
    ]
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((2, width), tokenizer.pad_token_id)
    labels = torch.full((2, width), IGNORE_INDEX)
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, (ids, target) in enumerate(rows):
        input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, target, 1
    # segments of different frame sizes, and a micro-batch (2) that crosses samples
    segments = [video(3, 64, 96, seed=0), video(2, 64, 64, seed=1)]
    return TempoBatch(segments, ["What colour?", "Which shape appears?"], input_ids, labels, mask)


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def recorded(model, fn):
    """``fn()``'s FLOPs by ``FlopCounterMode``, the padded recorder's step FLOPs, and the recorder
    (removed; gradients cleared)."""
    recorder = FlopRecorder(model, padded=True)
    try:
        total = counted(fn)
        step = recorder.flops()
    finally:
        recorder.remove()
        model.zero_grad(set_to_none=True)
    return total, step, recorder


def test_forward_matches_flop_counter(model, batch):
    total, step, recorder = recorded(model, lambda: model(batch))
    assert recorder.grid_thw == [(2, 4, 6)] * 3 + [(2, 4, 4)] * 2
    assert len(recorder.svlm_lengths) == 5 and len(recorder.llm_lengths) == 2
    assert recorder.projected_tokens == 5 * 8
    assert min(step.vision, step.svlm, step.projector, step.llm, step.vision_patch_embed) > 0
    assert step.forward == pytest.approx(total, rel=REL)


def test_training_step_matches_flop_counter(model, batch):
    total, step, _ = recorded(model, lambda: model(batch).loss.backward())
    assert step.training() == pytest.approx(total, rel=REL)
    assert step.training() < 3 * step.forward  # the patch embedding has no input gradient


def test_frozen_upstream_parts_cost_one_forward(model, batch):
    """Only the LLM learns: compressor and projector run forward only, the LLM 3×."""
    frozen = [p for name, p in model.named_parameters() if not name.startswith("decoder.")]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        total, step, _ = recorded(model, lambda: model(batch).loss.backward())
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    expected = step.training({"vision": False, "svlm": False, "projector": False, "llm": True})
    assert expected == pytest.approx(total, rel=REL)
    assert expected == pytest.approx(step.forward + 2 * step.llm, rel=REL)


def test_unpadded_counts_only_real_tokens(model, batch):
    recorder = FlopRecorder(model)
    padded = FlopRecorder(model, padded=True)
    try:
        with torch.no_grad():
            out = model(batch)
    finally:
        recorder.remove()
        padded.remove()
    assert recorder.llm_lengths == out.attention_mask.sum(1).tolist()
    assert padded.llm_lengths == [out.attention_mask.shape[1]] * 2
    assert sum(recorder.svlm_lengths) < sum(padded.svlm_lengths)
    assert recorder.flops().forward < padded.flops().forward


def test_packed_compressor_calls_count_each_segment(model, batch):
    """A packed call passes no mask: the recorder reads its segments from the restarting positions."""
    unpacked, packed = FlopRecorder(model), None
    try:
        with torch.no_grad():
            model(batch)
        unpacked.remove()
        packed = FlopRecorder(model)
        model.compressor.pack_segments = True
        with torch.no_grad():
            model(batch)
    finally:
        model.compressor.pack_segments = False
        unpacked.remove()
        if packed is not None:
            packed.remove()
    assert packed.svlm_lengths == unpacked.svlm_lengths and len(packed.svlm_lengths) == 5
    assert packed.flops().svlm == unpacked.flops().svlm > 0


def test_packed_lengths_split_rows_where_positions_restart():
    rows = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
    assert packed_lengths(rows) == [3, 2, 1, 6]
    four = torch.stack([rows, rows * 0, rows * 0, rows * 0])  # the text row leads the M-RoPE form
    assert packed_lengths(four) == [3, 2, 1, 6]


def test_vision_tower_alone(model):
    visual = model.compressor.svlm.visual
    grid = torch.tensor([[2, 4, 6], [1, 8, 4]])
    pixels = torch.randn(int(grid.prod(1).sum()), 3 * 2 * 16 * 16)
    total = counted(lambda: visual(pixels, grid_thw=grid))
    parts = vision_tower_flops(visual.config, grid.tolist())
    assert sum(parts.values()) == pytest.approx(total, rel=REL)


@given(
    lengths=st.lists(st.integers(1, 4096), min_size=1, max_size=6),
    split=st.integers(0, 6),
)
@settings(max_examples=40, deadline=None)
def test_decoder_flops_add_over_sequences_and_causal_half(lengths, split):
    config = {
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
    }
    whole = decoder_flops(config, lengths, lm_head=True)
    a = decoder_flops(config, lengths[:split], lm_head=True)
    b = decoder_flops(config, lengths[split:], lm_head=True)
    assert whole["layers"] == pytest.approx(a["layers"] + b["layers"], rel=1e-12)
    half = decoder_flops(config, lengths, lm_head=False, causal="half")
    dropped = 36 * 4 * 32 * 128 * sum(s * s - s * (s + 1) / 2 for s in lengths)
    assert whole["layers"] - half["layers"] == pytest.approx(dropped, rel=1e-9)
    assert half["lm_head"] == 0 and whole["lm_head"] == 2 * sum(lengths) * 2560 * 151936


# ------------------------------------------------------------------------------ real shapes
@pytest.fixture(scope="module")
def real_models():
    from tempo_kit.tiny.real_shapes import build_real_shape_models

    return build_real_shape_models(device="meta")


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def linear_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv3d)))


def test_real_shape_parameter_counts(real_models):
    """compatibility §5: Qwen3-VL-2B ≈ 2B, Qwen3-4B ≈ 4B, Tempo ≈ 6B (+ projector and memory tokens)."""
    svlm, llm = numel(real_models["svlm"]), numel(real_models["llm"])
    assert svlm == 2_127_532_032  # vision 406,957,056 + language model 1,720,574,976 (LM head tied)
    assert llm == 4_022_468_096
    total = svlm + llm + (2048 * 2560 + 2560) + 128 * 2048
    assert 6.1e9 < total < 6.2e9


def test_real_shape_flops_per_token_are_twice_the_matmul_weights(real_models):
    """Independent of the formulas: one token through every Linear costs 2 × its weights."""
    svlm = real_models["svlm"]
    text, llm = svlm.model.language_model, real_models["llm"]
    attention = lambda cfg: 4 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim  # noqa: E731
    one = decoder_flops(text.config, [1], lm_head=False)
    assert one["layers"] - attention(text.config) == 2 * linear_weights(text.layers)
    one = decoder_flops(llm.config, [1], lm_head=True)
    assert one["layers"] - attention(llm.config) + one["lm_head"] == 2 * linear_weights(llm)
    visual = svlm.model.visual
    # a 1×2×2 grid: 4 patches in one window of 4, merged into 1 token
    parts = vision_tower_flops(visual.config, [(1, 2, 2)])
    blocks = 4 * 2 * linear_weights(visual.blocks) + visual.config.depth * 4 * 16 * visual.config.hidden_size
    assert parts["blocks"] == blocks
    assert parts["patch_embed"] == 4 * 2 * visual.patch_embed.proj.weight.numel()
    mergers = linear_weights(visual.merger) + linear_weights(visual.deepstack_merger_list)
    assert parts["mergers"] == 2 * mergers


def test_projector_flops():
    assert projector_flops(2048, 2560, 10) == 2 * 10 * 2048 * 2560
    assert projector_flops(2048, 2560, 10, hidden=[2560]) == 2 * 10 * (2048 * 2560 + 2560 * 2560)


def test_mfu_and_peaks():
    peak = PEAK_BF16_DENSE_FLOPS["H100-SXM"]
    assert mfu(peak, 2.0, peak) == pytest.approx(0.5)
    assert peak_flops_for("NVIDIA H100 80GB HBM3") == peak
    assert peak_flops_for("NVIDIA H200") == PEAK_BF16_DENSE_FLOPS["H200"]
    assert peak_flops_for("NVIDIA H100 PCIe") == PEAK_BF16_DENSE_FLOPS["H100-PCIe"]
    assert peak_flops_for("cpu") is None
    with pytest.raises(ConfigError, match="positive step time"):
        mfu(1.0, 0.0, peak)
    with pytest.raises(ConfigError, match="unknown part"):
        StepFlops().training({"vit": True})
    with pytest.raises(ConfigError, match="input_grad"):
        StepFlops().training({"llm": "lora"})


def test_training_modes():
    step = StepFlops(vision_patch_embed=1, vision=10, svlm=100, projector=1000, llm=10000)
    assert step.training() == 2 * 1 + 3 * 11110
    frozen = dict.fromkeys(("vision", "svlm", "projector", "llm"), False)
    assert step.training(frozen) == step.forward
    # memory tokens learn inside a frozen SVLM: gradients pass through it and everything after
    through = {**frozen, "svlm": "input_grad"}
    assert step.training(through) == 1 + 10 + 2 * 100 + 2 * 1000 + 2 * 10000
    # only the LLM learns
    assert step.training({**frozen, "llm": True}) == 1 + 10 + 100 + 1000 + 3 * 10000
    with pytest.raises(ConfigError, match="causal"):
        decoder_flops({"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                       "num_attention_heads": 1, "num_key_value_heads": 1, "vocab_size": 8},
                      [3], lm_head=False, causal="quarter")  # fmt: skip


def test_real_shape_configs_follow_facts(real_models):
    svlm, llm = real_models["svlm"].config, real_models["llm"].config
    text, vision = svlm.text_config, svlm.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.intermediate_size) == (2048, 28, 6144)
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (16, 8, 128)
    assert text.rope_parameters["mrope_section"] == [24, 20, 20] and text.rope_parameters["rope_theta"] == 5e6
    assert (vision.depth, vision.hidden_size, vision.intermediate_size, vision.num_heads) == (
        24,
        1024,
        4096,
        16,
    )
    assert (vision.out_hidden_size, vision.num_position_embeddings) == (2048, 2304)
    assert vision.deepstack_visual_indexes == [5, 11, 17] and vision.hidden_act == "gelu_pytorch_tanh"
    assert (llm.hidden_size, llm.num_hidden_layers, llm.intermediate_size) == (2560, 36, 9728)
    assert (llm.num_attention_heads, llm.num_key_value_heads, llm.head_dim) == (32, 8, 128)
    assert llm.rope_parameters["rope_theta"] == 1e6
    assert text.vocab_size == llm.vocab_size == 151936
    assert svlm.tie_word_embeddings and llm.tie_word_embeddings
