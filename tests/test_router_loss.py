"""The router stage's objective: class-balanced BCE, labelled segments of a batch, settings, direction."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.errors import ConfigError
from tempo_kit.training.router import (
    RouterSettings,
    balanced_bce,
    labelled_segments,
    make_direction_trainable,
    router_loss,
)
from tempo_kit.types import Segments, TempoBatch


def test_balanced_bce_weighs_each_class_half():
    scores = torch.tensor([0.8, 0.4, 0.1])
    labels = torch.tensor([1.0, 0.0, 0.0])
    positive = -math.log(0.8)  # 0.22314
    negative = (-math.log(0.6) - math.log(0.9)) / 2  # 0.30809
    assert balanced_bce(scores, labels).item() == pytest.approx((positive + negative) / 2, abs=1e-6)  # 0.26562
    # one class only: that class's mean
    assert balanced_bce(scores[1:], labels[1:]).item() == pytest.approx(negative, abs=1e-6)


@given(st.integers(1, 6), st.integers(1, 40))
def test_balanced_bce_does_not_depend_on_how_many_negatives_there_are(positives, negatives):
    scores = torch.cat([torch.full((positives,), 0.7), torch.full((negatives,), 0.2)])
    labels = torch.cat([torch.ones(positives), torch.zeros(negatives)])
    expected = (-math.log(0.7) - math.log(0.8)) / 2
    assert balanced_bce(scores, labels).item() == pytest.approx(expected, abs=1e-6)


def test_balanced_bce_gradient_pushes_scores_towards_labels():
    logits = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    balanced_bce(torch.sigmoid(logits), torch.tensor([1.0, 0.0, 0.0])).backward()
    # d/dz of 0.5·BCE(σ(z), 1) = 0.5·(σ − 1) = −0.25; each negative: 0.5·σ/2 = 0.125
    assert logits.grad.tolist() == pytest.approx([-0.25, 0.125, 0.125])


def _batch(sizes, labels):
    segments = [
        Segments(torch.zeros(n, 2, 2, 2, 3, dtype=torch.uint8), torch.zeros(n, 2), torch.zeros(n)) for n in sizes
    ]
    ids = torch.zeros(len(sizes), 1, dtype=torch.long)
    return TempoBatch(segments, ["q"] * len(sizes), ids, ids, ids, ids=[f"s{i}" for i in range(len(sizes))], segment_labels=labels)


def test_only_samples_with_labels_contribute_in_batch_order():
    batch = _batch([2, 1, 3], [torch.tensor([0.0, 1.0]), None, torch.tensor([1.0, 0.0, 0.0])])
    relevance = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    scores, labels = labelled_segments(batch, relevance)
    assert scores.tolist() == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.6])
    assert labels.tolist() == [0, 1, 1, 0, 0]
    assert router_loss(_batch([2], [None]), relevance[:2]) is None
    with pytest.raises(ConfigError, match="query-agnostic"):
        router_loss(batch, None)
    with pytest.raises(ValueError, match="sample s0: 3 labels for 2 segments"):
        labelled_segments(_batch([2], [torch.zeros(3)]), relevance[:2])


@pytest.mark.parametrize(
    "section, message",
    [
        ({"wieght": 1.0}, "unknown key 'router.wieght' (did you mean 'weight'?)"),
        ({"weight": -1.0}, "router.weight=-1.0 must be a number ≥ 0"),
        ({"weight": 0.0, "answer_weight": 0.0}, "both 0: nothing to train"),
    ],
)
def test_bad_router_settings_name_the_key(section, message):
    with pytest.raises(ConfigError) as error:
        RouterSettings.from_recipe({"router": section})
    assert message in str(error.value)


def test_defaults_leave_the_paper_stages_unchanged():
    settings = RouterSettings.from_recipe({})
    assert (settings.active, settings.router_only, settings.answer_weight) == (False, False, 1.0)
    router = RouterSettings.from_recipe({"router": {"weight": 1.0, "answer_weight": 0.0}})
    assert router.router_only


def test_a_trainable_direction_keeps_its_key_and_stays_float32_through_dtype_moves(tiny_checkpoints):
    from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor

    compressor = Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=4, dtype="float32")
    before = compressor.relevance_direction.clone()
    parameter = make_direction_trainable(compressor)
    assert parameter.requires_grad and "relevance_direction" in dict(compressor.named_parameters())
    assert torch.equal(compressor.state_dict()["relevance_direction"], before)
    compressor.to(torch.bfloat16)
    assert compressor.relevance_direction.dtype == torch.float32
    assert isinstance(compressor.relevance_direction, torch.nn.Parameter)
    fresh = Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=4, dtype="float32")
    fresh.load_state_dict(compressor.float().state_dict())  # loads into the plain buffer
    assert torch.equal(fresh.relevance_direction, before)
