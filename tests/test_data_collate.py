"""TempoCollator: prompt ids, assistant-only labels, compressor queries, padding, modes."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.data import Sample, TempoCollator
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID
from tempo_kit.video import blank_image_segments, make_segments


def video_sample(sample_id="v", turns=None, answer=None, frames=10):
    segments = make_segments(torch.zeros(frames, 32, 48, 3, dtype=torch.uint8), 4)
    turns = turns or [Turn("user", "<video>\nWhat colour?"), Turn("assistant", "Red.")]
    return Sample(id=sample_id, segments=segments, turns=turns, answer=answer)


MULTI = [
    Turn("user", "<video>\nWhat is shown?"),
    Turn("assistant", "A ball."),
    Turn("user", "What colour is it?"),
    Turn("assistant", "Red."),
]


def test_train_batch(tiny_tokenizer):
    samples = [
        video_sample("a", MULTI),
        Sample("t", blank_image_segments(), [Turn("user", "Say hi."), Turn("assistant", "Hi.")]),
    ]
    batch = TempoCollator(tiny_tokenizer, mode="train")(samples)
    assert batch.ids == ["a", "t"] and [len(s) for s in batch.segments] == [3, 1]
    assert batch.queries == ["Context turn 1: What is shown?\nContext turn 2: What colour is it?", "Say hi."]
    for row, sample in enumerate(samples):
        ids, labels = encode_decoder_prompt(tiny_tokenizer, sample.turns, has_visual=sample.kind != "text")
        n = len(ids)
        assert torch.equal(batch.input_ids[row, :n], ids) and torch.equal(batch.labels[row, :n], labels)
        assert batch.attention_mask[row, :n].eq(1).all() and batch.attention_mask[row, n:].eq(0).all()
        assert batch.labels[row, n:].eq(IGNORE_INDEX).all()
    assert (batch.input_ids[0] == VISUAL_PLACEHOLDER_ID).sum() == 1
    assert (batch.input_ids[1] == VISUAL_PLACEHOLDER_ID).sum() == 0  # text-only: no visual slot
    supervised = tiny_tokenizer.decode(batch.labels[0][batch.labels[0] != IGNORE_INDEX])
    assert supervised == "A ball.<|im_end|>Red.<|im_end|>"
    assert batch.answers == ["Red.", "Hi."]


def test_eval_batch(tiny_tokenizer):
    sample = video_sample("a", MULTI[:3], answer="B")
    batch = TempoCollator(tiny_tokenizer, mode="eval")([sample])
    assert batch.queries == ["What colour is it?"]
    text = tiny_tokenizer.decode(batch.input_ids[0][batch.input_ids[0] >= 0])
    assert text.endswith("What colour is it?<|im_end|>\n<|im_start|>assistant\n")
    assert batch.labels.eq(IGNORE_INDEX).all() and batch.answers == ["B"]
    # a full conversation in eval mode stops before the last reply
    full = TempoCollator(tiny_tokenizer, mode="eval")([video_sample("b", MULTI)])
    decoded = tiny_tokenizer.decode(full.input_ids[0][full.input_ids[0] >= 0])
    assert "Red." not in decoded and decoded.endswith("<|im_start|>assistant\n") and full.answers == ["Red."]


def test_padding_and_max_length(tiny_tokenizer):
    short = video_sample("s")
    long = video_sample("l", [Turn("user", "<video>\n" + "word " * 40), Turn("assistant", "ok")])
    collator = TempoCollator(tiny_tokenizer, max_length=30)
    batch = collator([short, long])
    assert batch.input_ids.shape[1] == 30
    assert batch.input_ids[0, batch.attention_mask[0] == 0].eq(collator.pad_token_id).all()
    with pytest.raises(ValueError, match="mode"):
        TempoCollator(tiny_tokenizer, mode="predict")
    with pytest.raises(ValueError, match="empty"):
        collator([])
