"""From compressor memory to the visual tokens the decoder sees: allocation, reduction, projection.

Training keeps all ``k_max`` tokens of every segment (the paper trains without the allocator);
at inference the allocator picks how many tokens each segment keeps under the budget and the
reduction picks which ones. The kept tokens become per-sample
:class:`~tempo_kit.model.assembly.VisualSequence` s for sequence assembly, and
:func:`allocation_records` reports what was fed to the LLM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.allocators import reduce_tokens
from tempo_kit.errors import TempoKitError
from tempo_kit.model.assembly import VisualSequence
from tempo_kit.types import Allocation, CompressorOutput, TempoBatch


def select_visuals(
    batch: TempoBatch,
    compressed: CompressorOutput,
    projector: nn.Module,
    *,
    allocate: bool,
    allocator: nn.Module,
    budget: int,
    k_min: int,
    reduction: str,
    reduction_kwargs: Mapping[str, Any],
    tag_images: bool,
) -> tuple[list[VisualSequence | None], Tensor | None]:
    """Per sample kept + projected tokens (``None`` for text-only), and the DDP anchor.

    Training keeps all ``k_max`` tokens; with ``allocate`` the allocator picks counts and the
    reduction picks which tokens. All kept tokens of the batch go through the projector in
    one call, unless ``compressed.projected`` (a feature store's memory). A text-only sample's
    memory is projected too and enters the graph as ``0 * sum`` (so does the relevance) so every
    parameter takes part in each step (DDP).
    ``tag_images`` gives an image's single segment a time tag (video segments always get one).
    """
    k_max = compressed.memory.shape[1]
    flat: list[Tensor] = []
    plans: list[tuple[str, Tensor | None]] = []
    for index, ((memory, relevance), segments) in enumerate(zip(compressed.split(), batch.segments)):
        if segments.kind == "text":
            flat.append(memory.reshape(-1, memory.shape[-1]))
            plans.append(("text", None))
            continue
        if allocate:
            counts = allocator(relevance, k_max, budget, k_min, num_segments=len(segments))
            check_counts(counts, len(segments), k_max, budget, allocator, batch, index)
            kept = reduce_tokens(memory, counts, reduction, **reduction_kwargs)
            counts = torch.tensor([len(t) for t in kept], dtype=torch.long)
            flat.append(torch.cat(kept) if kept else memory[:0].reshape(0, memory.shape[-1]))
        else:
            counts = torch.full((len(segments),), k_max, dtype=torch.long)
            flat.append(memory.reshape(-1, memory.shape[-1]))
        plans.append(("visual", counts))

    stacked = torch.cat(flat)
    if not compressed.projected:  # a feature store's memory was projected when it was stored
        stacked = project(projector, stacked)
    projected = stacked.split([len(f) for f in flat])

    visuals: list[VisualSequence | None] = []
    anchor: Tensor | None = None
    for (kind, counts), tokens, segments in zip(plans, projected, batch.segments):
        if kind == "text":
            zero = 0 * tokens.sum()
            anchor = zero if anchor is None else anchor + zero
            visuals.append(None)
        else:
            tagged = segments.kind == "video" or tag_images
            visuals.append(VisualSequence(tokens, counts, segments.times.detach().cpu(), tagged=tagged))
    if compressed.relevance is not None and compressed.relevance.requires_grad:
        # relevance takes no part in the loss; a relevance head with its own weights must still
        # be in the graph for DDP
        zero = 0 * compressed.relevance.sum()
        anchor = zero if anchor is None else anchor + zero
    return visuals, anchor


def project(projector: nn.Module, tokens: Tensor) -> Tensor:
    """``tokens`` ``[N, d_c]`` through ``projector``, moved to its weights' dtype and device first
    (the memory may come from a compressor of another dtype). Training, inference and the feature
    store all project this way, so a stored token equals the one training would compute."""
    weight = next(projector.parameters(), None)
    if weight is not None:
        tokens = tokens.to(dtype=weight.dtype, device=weight.device)
    return projector(tokens)


def check_counts(
    counts, num_segments: int, k_max: int, budget: int, allocator, batch: TempoBatch, index: int
) -> None:
    """Hold every allocator (including plugins) to the contract: ``[S]`` longs in [0, k_max], Σk ≤ B."""
    name = type(allocator).__name__
    where = f"allocator {name} on sample {batch.ids[index] if index < len(batch.ids) else index!r}"
    if not isinstance(counts, Tensor) or counts.shape != (num_segments,) or counts.is_floating_point():
        shape = tuple(counts.shape) if isinstance(counts, Tensor) else type(counts).__name__
        raise TempoKitError(
            f"{where} returned {shape}; it must return an integer tensor [S] = [{num_segments}]"
        )
    if num_segments and (int(counts.min()) < 0 or int(counts.max()) > k_max):
        raise TempoKitError(f"{where} returned counts outside [0, k_max={k_max}]: {counts.tolist()}")
    if int(counts.sum()) > budget:
        raise TempoKitError(f"{where} spent {int(counts.sum())} tokens over the budget {budget}")


def allocation_records(
    batch: TempoBatch,
    compressed: CompressorOutput,
    counts: list[Tensor | None],
    budget: int,
    k_min: int,
) -> list[Allocation | None]:
    """Per sample, the :class:`~tempo_kit.types.Allocation` fed to the LLM (``None`` for text-only).

    ``counts`` are the assembled per-segment counts, i.e. after the context cap.
    """
    allocations: list[Allocation | None] = []
    for (_, relevance), segments, sample_counts in zip(compressed.split(), batch.segments, counts):
        if sample_counts is None:
            allocations.append(None)
            continue
        allocations.append(
            Allocation(
                counts=sample_counts,
                relevance=None if relevance is None else relevance.detach().float().cpu(),
                times=segments.times.detach().cpu(),
                budget=budget,
                k_min=k_min,
                k_max=compressed.memory.shape[1],
            )
        )
    return allocations
