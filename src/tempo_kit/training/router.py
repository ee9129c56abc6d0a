"""The router stage's objective: teach the SVLM's relevance score where the answer is.

The compressor scores segment ``i`` as ``s_i = σ((w_Yes − w_No) · h_i)`` (compatibility §2). The
paper uses that prior untrained and names fine-tuning it as future work; the router stage trains it
on segments labelled by ``relevant_spans`` (:mod:`tempo_kit.data.spans`) with a class-balanced
binary cross-entropy, optionally added to the usual answer loss:

    loss = answer_weight · answer_loss + weight · router_loss

Class balance: a needle covers a few segments of a long video, so a plain mean would be won by
answering "irrelevant" everywhere. :func:`balanced_bce` averages the positives and the negatives
separately and takes the mean of the two (each class weighs half, whatever its size).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tempo_kit.errors import ConfigError
from tempo_kit.types import TempoBatch

#: Recipe section holding :class:`RouterSettings`.
SECTION = "router"


@dataclass(frozen=True)
class RouterSettings:
    """The recipe's ``router:`` section.

    Attributes:
        weight: weight of the relevance loss; 0 turns the router objective off (every stage but
            the router stage).
        answer_weight: weight of the usual answer (next-token) loss; 0 skips the LLM entirely, so
            a router-only step costs one SVLM pass.
        train_direction: also train the relevance direction ``w_Yes − w_No`` (the SVLM's LM-head
            rows of "Yes" and "No", kept as the compressor's ``relevance_direction``). Off by
            default: the released checkpoint layout rebuilds the direction from the base SVLM, so
            a trained direction lives only in the kit's format.
        prompt: the SVLM system prompt while training (``"routing"``, what inference scores with;
            ``"standard"``; or a literal text).
    """

    weight: float = 0.0
    answer_weight: float = 1.0
    train_direction: bool = False
    prompt: str = "routing"

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any]) -> RouterSettings:
        section = dict(recipe.get(SECTION) or {})
        known = {f.name for f in fields(cls)}
        for key in section:
            if key not in known:
                from tempo_kit.errors import did_you_mean

                raise ConfigError(
                    f"unknown key '{SECTION}.{key}'{did_you_mean(key, known)}; known: {', '.join(sorted(known))}"
                )
        settings = cls(**section)
        for key in ("weight", "answer_weight"):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{SECTION}.{key}={value!r} must be a number ≥ 0")
        if settings.weight == 0 and settings.answer_weight == 0:
            raise ConfigError(f"{SECTION}.weight and {SECTION}.answer_weight are both 0: nothing to train")
        return settings

    @property
    def active(self) -> bool:
        return self.weight > 0

    @property
    def router_only(self) -> bool:
        """No answer loss: the step runs the compressor alone."""
        return self.active and self.answer_weight == 0


def balanced_bce(scores: Tensor, labels: Tensor) -> Tensor:
    """Class-balanced binary cross-entropy of probabilities ``scores`` against 0/1 ``labels``.

    The mean over positive segments and the mean over negative ones, averaged; a batch holding one
    class only gives that class's mean. Scores are the compressor's float32 sigmoids: a score
    saturated to exactly 0 or 1 in float32 (|logit| ≳ 17) passes no gradient.
    """
    if scores.shape != labels.shape or scores.numel() == 0:
        raise ValueError(
            f"need non-empty scores and labels of one shape, got {scores.shape} and {labels.shape}"
        )
    terms = F.binary_cross_entropy(scores.float(), labels.float(), reduction="none")
    positive = labels > 0.5
    parts = [terms[mask].mean() for mask in (positive, ~positive) if mask.any()]
    return torch.stack(parts).mean()


def labelled_segments(batch: TempoBatch, relevance: Tensor) -> tuple[Tensor, Tensor]:
    """``(scores, labels)`` of the segments of samples that carry labels, in batch order.

    ``relevance`` is the compressor's ``[S_total]`` over every sample of ``batch`` (a text-only
    sample's blank image counts as its one segment).
    """
    sizes = [len(s) for s in batch.segments]
    labels = batch.segment_labels or [None] * len(sizes)
    scores, targets = [], []
    for sample_scores, sample_labels, sid in zip(relevance.split(sizes), labels, batch.ids or sizes):
        if sample_labels is None:
            continue
        if len(sample_labels) != len(sample_scores):
            raise ValueError(f"sample {sid}: {len(sample_labels)} labels for {len(sample_scores)} segments")
        scores.append(sample_scores)
        targets.append(sample_labels.to(sample_scores.device))
    if not scores:
        return relevance.new_zeros(0), relevance.new_zeros(0)
    return torch.cat(scores), torch.cat(targets)


def router_loss(batch: TempoBatch, relevance: Tensor | None) -> Tensor | None:
    """:func:`balanced_bce` over the batch's labelled segments, or ``None`` if it has none."""
    if relevance is None:
        raise ConfigError(
            "router.weight > 0 needs a compressor that scores relevance (qwen3_vl); this one is "
            "query-agnostic"
        )
    scores, labels = labelled_segments(batch, relevance)
    return balanced_bce(scores, labels) if len(scores) else None


def make_direction_trainable(compressor: nn.Module) -> nn.Parameter:
    """Turn the compressor's ``relevance_direction`` buffer into a trainable float32 parameter, in place.

    The state-dict key stays ``relevance_direction``, so the exported folder loads into a plain
    compressor (as its buffer) unchanged.
    """
    direction = getattr(compressor, "relevance_direction", None)
    if not isinstance(direction, Tensor):
        raise ConfigError(
            f"router.train_direction needs a compressor with a relevance_direction ({type(compressor).__name__} has none)"
        )
    if isinstance(direction, nn.Parameter):
        direction.requires_grad_(True)
        return direction
    del compressor._buffers["relevance_direction"]
    parameter = nn.Parameter(direction.detach().float().clone())
    compressor.register_parameter("relevance_direction", parameter)
    return parameter
