"""The records :class:`~tempo_kit.model.TempoModel` returns from ``forward`` and ``generate``."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from tempo_kit.model.assembly import TokenStats
from tempo_kit.types import Allocation


@dataclass
class TempoOutput:
    """What :meth:`TempoModel.forward` returns.

    Attributes:
        loss: mean cross-entropy over supervised (assistant) tokens, or ``None`` without labels.
        logits: ``[B, L, V]`` over the assembled sequence (with ``train_pack_tokens``: ``[R, L, V]``
            over the packed rows, and ``labels``/``attention_mask`` are the rows' too).
        visual_tokens: memory tokens inserted per sample (0 for text-only samples).
        counts: per sample, tokens inserted per segment (``None`` for text-only samples).
        relevance: ``[S_total]`` compressor relevance (``None`` if query-agnostic).
        stats: per-sample :class:`~tempo_kit.model.assembly.TokenStats`.
        labels, attention_mask: ``[B, L]`` of the assembled sequence.
        allocations: per sample, only with ``forward(allocate=True)``.
    """

    loss: Tensor | None
    logits: Tensor
    visual_tokens: list[int]
    counts: list[Tensor | None]
    relevance: Tensor | None
    stats: list[TokenStats]
    labels: Tensor | None
    attention_mask: Tensor
    allocations: list[Allocation | None] | None = None


@dataclass
class GenerationOutput:
    """What :meth:`TempoModel.generate` returns.

    Attributes:
        texts: decoded answers, special tokens removed.
        token_ids: ``[B, N]`` generated ids (no prompt), pad id after the end.
        allocations: per sample, the :class:`~tempo_kit.types.Allocation` that was fed to the LLM
            (counts after the context cap); ``None`` for a text-only sample.
        stats: per-sample :class:`~tempo_kit.model.assembly.TokenStats` of the LLM input.
        timings: seconds per phase: ``compress`` (0 when given ``compressed=``), ``allocate``
            (allocator, reduction, projector), ``assemble`` (time tags and the context cap) and
            ``generate`` (the LLM).
    """

    texts: list[str]
    token_ids: Tensor
    allocations: list[Allocation | None]
    stats: list[TokenStats]
    timings: dict[str, float] = field(default_factory=dict)
