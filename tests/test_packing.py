"""Packed decoder rows in training: the padded loss and gradients, fewer padded tokens, refused
where the decoder cannot pack."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model import config, segments, train_batch

from tempo_kit.decoders import Decoder
from tempo_kit.errors import ConfigError
from tempo_kit.model import TempoModel
from tempo_kit.model.packing import pack_rows, plan_rows
from tempo_kit.registry import DECODERS
from tempo_kit.types import IGNORE_INDEX


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=20), st.integers(1, 60))
def test_plan_keeps_every_sample_once_in_order_within_the_row_budget(lengths, pack_tokens):
    rows = plan_rows(lengths, pack_tokens)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert row == sorted(row)
        assert sum(lengths[i] for i in row) <= pack_tokens or len(row) == 1  # an oversized sample alone
    # first fit: no later row could have taken a sample placed in a new row
    for r, row in enumerate(rows):
        for earlier in rows[:r]:
            used = sum(lengths[i] for i in earlier if i < row[0])
            assert used + lengths[row[0]] > pack_tokens


def test_pack_rows_layout():
    """Hand-worked: lengths 3, 2, 4 in rows of 5 → [s0 s1] and [s2 + 1 tail]."""
    embeds = torch.arange(3 * 4 * 1, dtype=torch.float).reshape(3, 4, 1) + 1
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    labels = torch.tensor([[-100, 7, 8, -100], [-100, 9, -100, -100], [5, 6, 7, 8]])
    packed = pack_rows(embeds, mask, labels, pack_tokens=5)
    assert packed.rows == [[0, 1], [2]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    assert packed.labels.tolist() == [[-100, 7, 8, -100, 9], [-100, 6, 7, 8, -100]]
    assert packed.token_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert packed.inputs_embeds[0, :, 0].tolist() == [1, 2, 3, 5, 6]
    assert packed.inputs_embeds[1, :, 0].tolist() == [9, 10, 11, 12, 0]


@pytest.fixture()
def fp32_model(tiny_checkpoints):
    torch.manual_seed(0)
    llm = tiny_checkpoints["llm"]
    return TempoModel.from_config(config(llm, decoder={"name": "hf_causal_lm", "pretrained": str(llm), "dtype": "float32"}))


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(batch)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_packed_loss_and_gradients_equal_the_padded_ones(fp32_model):
    model = fp32_model
    model.train()
    batch = train_batch(
        model.tokenizer,
        [
            (segments(4, seed=1), "What colour is the circle?", "Red"),
            (segments(1, kind="image", seed=2, window=1), "What shape is shown?", "A square"),
            (segments(1, kind="text", seed=3, window=1), "Count to three", "one two three"),
            (segments(2, seed=4), "When does it move?", "At 2.0 seconds"),
        ],
    )
    padded, padded_grads = _loss_and_grads(model, batch)
    lengths = padded.attention_mask.sum(1).tolist()
    model.config.train_pack_tokens = max(lengths) + min(lengths)  # the longest row holds two samples
    packed, packed_grads = _loss_and_grads(model, batch)
    assert packed.logits.shape[0] < len(lengths)  # really packed: fewer rows
    assert int((packed.labels != IGNORE_INDEX).sum()) == int((padded.labels[:, 1:] != IGNORE_INDEX).sum())
    assert torch.allclose(packed.loss, padded.loss, atol=1e-5, rtol=0)
    assert packed_grads.keys() == padded_grads.keys() and packed_grads
    for name, grad in padded_grads.items():
        assert torch.allclose(packed_grads[name], grad, atol=1e-5, rtol=1e-4), name


@DECODERS.register("test_unpackable", override=True)
class Unpackable(Decoder):
    """A decoder that keeps the interface's default: it cannot take packed rows."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_size, self.tokenizer = 8, None
        self.embedding = torch.nn.Embedding(4, 8)

    def embed(self, input_ids):
        return self.embedding(input_ids)

    def forward(self, inputs_embeds, attention_mask, labels=None, position_ids=None):
        raise AssertionError("never reached")

    def generate(self, inputs_embeds, attention_mask, **kwargs):
        raise AssertionError("never reached")


def test_packing_with_a_decoder_that_cannot_pack_is_refused_at_build(tiny_checkpoints):
    cfg = config(tiny_checkpoints["llm"], decoder={"name": "test_unpackable"}, train_pack_tokens=64)
    with pytest.raises(ConfigError, match=r"train_pack_tokens=64: Unpackable does not declare support"):
        TempoModel.from_config(cfg)


@pytest.mark.parametrize("value", [0, -3, 2.5, "many", True])
def test_pack_tokens_must_be_a_positive_count(tiny_checkpoints, value):
    with pytest.raises(ConfigError, match="train_pack_tokens must be a positive number"):
        TempoModel.from_config(config(tiny_checkpoints["llm"], train_pack_tokens=value))
