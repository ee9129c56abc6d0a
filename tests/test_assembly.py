"""Sequence assembly: layout, labels, time-tag order, dropped segments, the context cap, padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.errors import ConfigError
from tempo_kit.model.assembly import SequenceAssembler, VisualSequence, fit_to_context
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID

DIM = 4


def id_embed(ids: torch.Tensor) -> torch.Tensor:
    """Embeds id ``i`` as a row of ``i``: the assembled sequence can be read back exactly."""
    return ids.float().unsqueeze(-1).expand(*ids.shape, DIM).clone()


def visual(counts, times, tagged=True) -> VisualSequence:
    """Segment ``s``'s tokens are rows of ``-(1000 + s)`` so positions name their segment."""
    counts = torch.tensor(counts, dtype=torch.long)
    rows = [torch.full((int(k), DIM), -(1000.0 + s)) for s, k in enumerate(counts)]
    tokens = torch.cat(rows) if rows else torch.zeros(0, DIM)
    return VisualSequence(tokens, counts, torch.tensor(times, dtype=torch.float), tagged=tagged)


def prompt(tokenizer, *, answer: str | None = "Red", has_visual=True, question="What colour?"):
    turns = [Turn("user", question)] + ([Turn("assistant", answer)] if answer else [])
    ids, labels = encode_decoder_prompt(
        tokenizer, turns, has_visual=has_visual, add_generation_prompt=answer is None
    )
    return ids, labels


def batch_of(prompts):
    length = max(len(ids) for ids, _ in prompts)
    input_ids = torch.zeros(len(prompts), length, dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    mask = torch.zeros_like(input_ids)
    for b, (ids, lab) in enumerate(prompts):
        input_ids[b, : len(ids)], labels[b, : len(ids)], mask[b, : len(ids)] = ids, lab, 1
    return input_ids, mask, labels


def read_back(row: torch.Tensor) -> list:
    """Each position as ``("id", i)`` for embedded text or ``("seg", s)`` for a memory token."""
    out = []
    for value in row[:, 0].tolist():
        out.append(("seg", int(-value - 1000)) if value <= -1000 else ("id", int(value)))
    return out


@pytest.fixture()
def assembler(tiny_tokenizer):
    return SequenceAssembler(tiny_tokenizer, id_embed)


def test_layout_is_prefix_then_tag_and_tokens_per_segment_then_rest(tiny_tokenizer, assembler):
    ids, labels = prompt(tiny_tokenizer)
    vis = visual([2, 3], [1.0, 3.0])
    input_ids, mask, lab = batch_of([(ids, labels)])
    out = assembler(input_ids, mask, [vis], lab, max_context=1000)
    pos = int((ids == VISUAL_PLACEHOLDER_ID).nonzero())
    tag1 = tiny_tokenizer("<1.0 seconds>", add_special_tokens=False)["input_ids"]
    tag3 = tiny_tokenizer("<3.0 seconds>", add_special_tokens=False)["input_ids"]
    expected = (
        [("id", i) for i in ids[:pos].tolist()]
        + [("id", i) for i in tag1]
        + [("seg", 0)] * 2
        + [("id", i) for i in tag3]
        + [("seg", 1)] * 3
        + [("id", i) for i in ids[pos + 1 :].tolist()]
    )
    assert read_back(out.inputs_embeds[0]) == expected
    text = len(ids) - 1
    assert out.inputs_embeds.shape[1] == text + len(tag1) + 2 + len(tag3) + 3
    assert (
        out.stats[0].text == text and out.stats[0].tags == len(tag1) + len(tag3) and out.stats[0].visual == 5
    )
    assert out.attention_mask.all()
    # labels: the prompt's labels around the insertion, -100 on every inserted position
    inserted = len(tag1) + 2 + len(tag3) + 3
    expected_labels = labels[:pos].tolist() + [IGNORE_INDEX] * inserted + labels[pos + 1 :].tolist()
    assert out.labels[0].tolist() == expected_labels
    supervised = out.labels[0] != IGNORE_INDEX
    kept_ids = torch.tensor([v for kind, v in read_back(out.inputs_embeds[0])])
    assert tiny_tokenizer.decode(kept_ids[supervised]) == "Red<|im_end|>"


def test_segments_are_placed_in_time_order_and_zero_count_segments_vanish_with_their_tag(
    tiny_tokenizer, assembler
):
    ids, labels = prompt(tiny_tokenizer)
    vis = visual([2, 0, 1, 3], [6.0, 2.0, 4.0, 0.5])
    out = assembler(*batch_of([(ids, labels)])[:2], [vis], max_context=1000)
    decoded = read_back(out.inputs_embeds[0])
    segments_in_order = [v for kind, v in decoded if kind == "seg"]
    assert segments_in_order == [3, 3, 3, 2, 0, 0]
    text = tiny_tokenizer.decode([v for kind, v in decoded if kind == "id"])
    assert "<0.5 seconds><4.0 seconds><6.0 seconds>" in text
    assert "<2.0 seconds>" not in text
    assert out.counts[0].tolist() == [2, 0, 1, 3]
    assert out.labels is None


def test_untagged_sequence_and_custom_template(tiny_tokenizer):
    ids, labels = prompt(tiny_tokenizer)
    input_ids, mask, lab = batch_of([(ids, labels)])
    plain = SequenceAssembler(tiny_tokenizer, id_embed)(input_ids, mask, [visual([3], [0.0], tagged=False)])
    assert plain.inputs_embeds.shape[1] == len(ids) - 1 + 3 and plain.stats[0].tags == 0
    paper = SequenceAssembler(tiny_tokenizer, id_embed, time_tag_template="<t={t:.1f}s>")
    out = paper(input_ids, mask, [visual([1], [2.0])])
    text = tiny_tokenizer.decode([v for kind, v in read_back(out.inputs_embeds[0]) if kind == "id"])
    assert "user\n<t=2.0s>\nWhat colour?" in text


def test_text_only_sample_keeps_its_prompt(tiny_tokenizer, assembler):
    ids, labels = prompt(tiny_tokenizer, has_visual=False)
    input_ids, mask, batch_labels = batch_of([(ids, labels)])
    out = assembler(input_ids, mask, [None], batch_labels)
    assert [v for _, v in read_back(out.inputs_embeds[0])] == ids.tolist()
    assert out.labels[0].tolist() == labels.tolist()
    assert out.counts == [None] and out.stats[0].visual == 0


def test_padding_right_for_training_left_for_generation(tiny_tokenizer, assembler):
    long_ids, long_labels = prompt(tiny_tokenizer)
    short_ids, short_labels = prompt(tiny_tokenizer, has_visual=False, question="Hi")
    input_ids, mask, labels = batch_of([(long_ids, long_labels), (short_ids, short_labels)])
    visuals = [visual([4], [1.0]), None]
    right = assembler(input_ids, mask, visuals, labels, padding_side="right")
    left = assembler(input_ids, mask, visuals, labels, padding_side="left")
    n_short = len(short_ids)
    length = right.inputs_embeds.shape[1]
    assert right.attention_mask[1].tolist() == [1] * n_short + [0] * (length - n_short)
    assert left.attention_mask[1].tolist() == [0] * (length - n_short) + [1] * n_short
    torch.testing.assert_close(right.inputs_embeds[1, :n_short], left.inputs_embeds[1, -n_short:])
    assert (right.inputs_embeds[1, n_short:] == 0).all() and (right.labels[1, n_short:] == IGNORE_INDEX).all()
    torch.testing.assert_close(right.inputs_embeds[0], left.inputs_embeds[0])


def test_cap_cuts_visual_tail_and_never_text(tiny_tokenizer, assembler):
    ids, labels = prompt(tiny_tokenizer)
    text = len(ids) - 1
    tag = len(tiny_tokenizer("<1.0 seconds>", add_special_tokens=False)["input_ids"])
    vis = visual([5, 5, 5], [1.0, 3.0, 5.0])
    # room for segment 0 whole and segment 1's tag + 2 tokens
    cap = text + (tag + 5) + (tag + 2)
    out = assembler(*batch_of([(ids, labels)])[:2], [vis], max_context=cap)
    assert out.inputs_embeds.shape[1] == cap
    assert out.counts[0].tolist() == [5, 2, 0]
    assert out.stats[0].cut == 8 and out.stats[0].total == cap
    decoded = read_back(out.inputs_embeds[0])
    pos = int((ids == VISUAL_PLACEHOLDER_ID).nonzero())
    assert [v for kind, v in decoded if kind == "id"][-(len(ids) - pos - 1) :] == ids[pos + 1 :].tolist()
    with pytest.raises(ConfigError, match=r"prompt text alone is \d+ tokens, over max_context=10"):
        assembler(*batch_of([(ids, labels)])[:2], [vis], max_context=10)


def test_placeholder_errors_name_the_sample(tiny_tokenizer, assembler):
    vis_ids, vis_labels = prompt(tiny_tokenizer)
    text_ids, text_labels = prompt(tiny_tokenizer, has_visual=False)
    input_ids, mask, _ = batch_of([(text_ids, text_labels)])
    with pytest.raises(
        ConfigError, match="'clip-7': a visual sample needs exactly one visual placeholder id -200"
    ):
        assembler(input_ids, mask, [visual([1], [0.0])], sample_ids=["clip-7"])
    input_ids, mask, _ = batch_of([(vis_ids, vis_labels)])
    with pytest.raises(ConfigError, match="sample 0: input_ids hold the visual placeholder"):
        assembler(input_ids, mask, [None])


@pytest.mark.parametrize(
    ("tags", "counts", "room", "segments", "released"),
    [
        ([3, 3, 3], [4, 4, 4], 100, [(3, 4)] * 3, [(3, 4)] * 3),
        ([3, 3, 3], [4, 4, 4], 14, [(3, 4), (3, 4), (0, 0)], [(3, 4), (3, 4), (0, 0)]),
        ([3, 3, 3], [4, 4, 4], 12, [(3, 4), (3, 2), (0, 0)], [(3, 4), (3, 2), (0, 0)]),
        # 3 rows left: "segments" drops a tag without a token; released keeps the 3 tag rows
        ([3, 3, 3], [4, 4, 4], 10, [(3, 4), (0, 0), (0, 0)], [(3, 4), (3, 0), (0, 0)]),
        # 2 rows left: released cuts inside the tag
        ([3, 3, 3], [4, 4, 4], 9, [(3, 4), (0, 0), (0, 0)], [(3, 4), (2, 0), (0, 0)]),
        ([3, 3, 3], [4, 0, 4], 14, [(3, 4), (0, 0), (3, 4)], [(3, 4), (0, 0), (3, 4)]),  # 0 tokens: free
        ([0, 0], [4, 4], 5, [(0, 4), (0, 1)], [(0, 4), (0, 1)]),
        ([3], [4], 0, [(0, 0)], [(0, 0)]),
        ([3], [4], -5, [(0, 0)], [(0, 0)]),  # text + answer room over the cap: nothing visual
    ],
)
def test_fit_to_context_cases(tags, counts, room, segments, released):
    assert fit_to_context(tags, counts, room, "segments") == segments
    assert fit_to_context(tags, counts, room, "released") == released
    assert fit_to_context(tags, counts, room) == released  # the default


def test_fit_to_context_refuses_unknown_rule():
    with pytest.raises(ConfigError, match="context_cut='tail'"):
        fit_to_context([3], [4], 10, "tail")


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 12), min_size=1, max_size=8),
    tag=st.integers(0, 5),
    room=st.integers(0, 120),
    cut=st.sampled_from(["released", "segments"]),
)
def test_fit_to_context_properties(counts, tag, room, cut):
    fitted = fit_to_context([tag] * len(counts), counts, room, cut)
    used = sum(t + k for t, k in fitted)
    assert used <= room
    assert all(0 <= k <= c and 0 <= t <= tag for (t, k), c in zip(fitted, counts))
    if sum(tag + c for c in counts if c > 0) <= room:
        assert [k for _, k in fitted] == counts
    nonzero = [i for i, c in enumerate(counts) if c > 0]
    if cut == "released":  # raw rows: everything up to the room, in order
        assert used == min(room, sum(tag + c for c in counts if c > 0))
    kept = [i for i in nonzero if fitted[i][1] > 0]
    assert kept == nonzero[: len(kept)]  # a prefix (in time order), only the last may shrink
    assert all(fitted[i] == (tag, counts[i]) for i in kept[:-1])


@settings(max_examples=25, deadline=None)
@given(
    counts=st.lists(st.integers(0, 9), min_size=1, max_size=6),
    extra=st.integers(0, 60),
    reserve=st.sampled_from([0, 16]),
)
def test_assembled_length_is_text_plus_tags_plus_tokens_and_within_cap(tiny_tokenizer, counts, extra, reserve):
    assembler = SequenceAssembler(tiny_tokenizer, id_embed)
    ids, labels = prompt(tiny_tokenizer)
    times = [0.5 + 2.0 * i for i in range(len(counts))]
    cap = len(ids) - 1 + extra
    out = assembler(*batch_of([(ids, labels)])[:2], [visual(counts, times)], max_context=cap, reserve=reserve)
    kept = out.counts[0].tolist()
    stats = out.stats[0]
    assert out.inputs_embeds.shape[1] == len(ids) - 1 + stats.tags + sum(kept)
    assert stats.tags + sum(kept) == min(max(extra - reserve, 0), sum(
        len(assembler.tag_ids(t)) + k for t, k in zip(times, counts) if k > 0
    ))  # released: raw visual rows cut to max_context − reserve − text
    assert stats.cut == sum(counts) - sum(kept)
