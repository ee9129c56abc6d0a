"""Packed compressor calls (``pack_segments``) give the padded call's memory and relevance.

The batch mixes what makes padding large: a 16:9 and a 4:3 video (different tokens per temporal
patch), a short last window, an image and questions of different lengths. fp32, within 1e-5.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compressor_qwen3_vl import image_segments

from tempo_kit.compressors.base import padded_tokens
from tempo_kit.compressors.packed import pack_call, pack_position_ids
from tempo_kit.compressors.segment_attention import SEGMENT_ATTENTION, sequence_bounds
from tempo_kit.errors import ConfigError
from tempo_kit.model.compression import call_plan, compress_samples
from tempo_kit.registry import COMPRESSORS
from tempo_kit.video import make_segments

K_MAX = 3
QUERIES = ["Where is the red ball?", "What?", "Which of the two people on the left walks out of the room first?"]


def video(height: int, width: int, frames: int, seed: int):
    pixels = torch.randint(
        0, 256, (frames, height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )
    return make_segments(pixels, 4, kind="video", real_fps=2.0)


def mixed_samples():
    """16:9 video (windows 4, 4, 2), 4:3 video (4, 1), one image."""
    return [video(36, 64, 10, 1), video(48, 64, 5, 2), image_segments(size=(40, 56))]


def build(name: str, folder, **options):
    torch.manual_seed(0)
    return COMPRESSORS.get(name)(str(folder), k_max=K_MAX, dtype="float32", **options).eval()


@pytest.fixture(scope="module", params=["qwen3_vl", "qwen2_5_vl", "smolvlm"])
def pair(request, tiny_svlm):
    """The same weights padded and packed."""
    folder = tiny_svlm(request.param)
    padded = build(request.param, folder)
    packed = build(request.param, folder, pack_segments=True)
    packed.load_state_dict(padded.state_dict())
    return padded, packed


@torch.no_grad()
def test_packed_call_equals_the_padded_one(pair):
    padded, packed = pair
    samples = mixed_samples()
    want, got = padded(samples, QUERIES), packed(samples, QUERIES)
    assert got.num_segments == want.num_segments == [3, 2, 1]
    torch.testing.assert_close(got.memory, want.memory, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.relevance, want.relevance, rtol=0, atol=1e-5)
    # the two videos' rows differ in length: there is padding to save
    counts = [c for s, q in zip(samples, QUERIES) for c in padded.segment_tokens(s, q)]
    assert len(set(counts)) > 2 and packed.call_tokens(counts) == sum(counts) < padded.call_tokens(counts)


@pytest.mark.parametrize("family", ["qwen3_vl", "smolvlm"])
@torch.no_grad()
def test_sdpa_per_segment_equals_the_padded_call(family, tiny_svlm):
    """The kit's ``sdpa_segments`` (SDPA run on each packed segment, no whole-row mask) also gives
    the padded call's results, vision tower included (it takes transformers' SDPA there)."""
    padded = build(family, tiny_svlm(family))
    packed = build(family, tiny_svlm(family), pack_segments=True, attn_implementation=SEGMENT_ATTENTION)
    packed.load_state_dict(padded.state_dict())
    samples = mixed_samples()
    want, got = padded(samples, QUERIES), packed(samples, QUERIES)
    torch.testing.assert_close(got.memory, want.memory, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.relevance, want.relevance, rtol=0, atol=1e-5)
    # unpacked, the same implementation is plain SDPA: the padded call is unchanged
    plain = build(family, tiny_svlm(family), attn_implementation=SEGMENT_ATTENTION)
    plain.load_state_dict(padded.state_dict())
    again = plain(samples, QUERIES)
    torch.testing.assert_close(again.memory, want.memory, rtol=0, atol=1e-6)


@torch.no_grad()
def test_left_padding_gives_the_same_packed_row(pair):
    padded, packed = pair
    samples = mixed_samples()[:2]
    want = packed(samples, QUERIES[:2])
    packed.padding_side = "left"
    try:
        got = packed(samples, QUERIES[:2])
    finally:
        packed.padding_side = "right"
    torch.testing.assert_close(got.memory, want.memory, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.relevance, want.relevance, rtol=0, atol=1e-6)


@torch.no_grad()
def test_a_packed_budget_counts_real_tokens_and_keeps_results(tiny_svlm):
    padded = build("qwen3_vl", tiny_svlm("qwen3_vl"))
    packed = build("qwen3_vl", tiny_svlm("qwen3_vl"), pack_segments=True)
    packed.load_state_dict(padded.state_dict())
    samples, queries = mixed_samples()[:2], QUERIES[:2]
    counts = [c for s, q in zip(samples, queries) for c in packed.segment_tokens(s, q)]
    budget = sum(counts[:3])  # three segments fit packed; padded, fewer do
    padded.call_token_budget = packed.call_token_budget = budget
    assert call_plan(packed, samples, queries) == [3, 2]
    assert sum(call_plan(padded, samples, queries)) == 5 and max(call_plan(padded, samples, queries)) < 3
    got = compress_samples(packed, samples, queries)
    want = padded(samples, queries)
    torch.testing.assert_close(got.memory, want.memory, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.relevance, want.relevance, rtol=0, atol=1e-5)


def test_packing_is_refused_before_work_where_it_cannot_attend(tiny_svlm):
    with pytest.raises(ConfigError, match="flex_attention.*cannot attend within packed segments"):
        build("qwen3_vl", tiny_svlm("qwen3_vl"), pack_segments=True, attn_implementation="flex_attention")


def test_a_family_that_does_not_opt_in_refuses_packing(tiny_svlm):
    from tempo_kit.compressors.packed import check_packing
    from tempo_kit.compressors.qwen3_vl import Qwen3VLFamily

    class Unpacked(Qwen3VLFamily):
        packs_segments = False

    check_packing(Unpacked, False, "sdpa")  # not asked: nothing to refuse
    with pytest.raises(ConfigError, match="cannot pack segments.*pack_segments: false"):
        check_packing(Unpacked, True, "sdpa")


# ---------------------------------------------------------------- the layout, over any lengths
def padded_layout(lengths, k, side):
    width = max(lengths) + k
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    memory = torch.zeros_like(ids, dtype=torch.bool)
    last = torch.empty(len(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        start = 0 if side == "right" else width - n - k
        ids[row, start : start + n] = 1000 * (row + 1) + torch.arange(n)  # token i of segment row
        mask[row, start : start + n + k] = 1
        memory[row, start + n : start + n + k] = True
        last[row] = start + n - 1
    return ids, mask, memory, last


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    k=st.integers(1, 4),
    side=st.sampled_from(["right", "left"]),
)
def test_the_packed_row_holds_each_segment_in_order_with_its_own_positions(lengths, k, side):
    ids, mask, memory, last = padded_layout(lengths, k, side)
    call = pack_call(ids, mask, memory, last)
    assert call.input_ids.shape == (1, sum(lengths) + k * len(lengths)) == call.memory_mask.shape
    offset = 0
    for row, n in enumerate(lengths):
        span = call.input_ids[0, offset : offset + n]
        assert torch.equal(span, 1000 * (row + 1) + torch.arange(n))
        assert call.memory_mask[0, offset + n : offset + n + k].all()
        assert int(call.last_real[row]) == offset + n - 1
        offset += n + k
    flat = (mask.cumsum(-1) - 1).clamp(min=0)
    assert torch.equal(pack_position_ids(flat, mask)[0], torch.cat([torch.arange(n + k) for n in lengths]))
    rope = torch.stack([flat * 2, flat + 7, flat])  # any per-token M-RoPE values are carried over
    four = pack_position_ids(rope, mask)
    assert four.shape == (4, 1, call.input_ids.shape[1])
    assert torch.equal(four[0, 0], torch.cat([torch.arange(n + k) for n in lengths]))
    assert torch.equal(four[1:, 0], rope[:, mask.bool()])


def test_padded_and_packed_costs():
    assert padded_tokens([3, 9, 4]) == 27


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 20), min_size=1, max_size=6))
def test_sequence_bounds_split_where_positions_restart(lengths):
    positions = torch.cat([torch.arange(n) for n in lengths])
    edges = [0, *torch.tensor(lengths).cumsum(0).tolist()]
    assert sequence_bounds(positions) == list(zip(edges, edges[1:]))
