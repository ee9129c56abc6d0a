"""Running a compressor over a batch: text-only samples skipped on request, micro-batched calls.

Segments are compressed independently, so splitting a batch into calls of at most
``micro_batch`` segments changes memory use, never results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from tempo_kit.errors import TempoKitError
from tempo_kit.types import CompressorOutput, Segments, TempoBatch


def compress_batch(
    compressor: nn.Module, batch: TempoBatch, *, micro_batch: int | None = None, skip_text: bool = False
) -> CompressorOutput:
    """Run ``compressor`` over every segment of ``batch``, ``micro_batch`` segments per call at most.

    With ``skip_text`` a text-only sample's blank image is not compressed (it only exists so
    that training touches every parameter); it gets 0 segments in the output.
    """
    if not skip_text or all(s.kind != "text" for s in batch.segments):
        return compress_samples(compressor, batch.segments, batch.queries, micro_batch)
    keep = [i for i, s in enumerate(batch.segments) if s.kind != "text"]
    width = (compressor.k_max, compressor.hidden_size)
    kept = [batch.segments[i] for i in keep]
    parts = iter(
        compress_samples(compressor, kept, [batch.queries[i] for i in keep], micro_batch).split()
        if keep
        else []
    )
    memories, relevances, counts = [], [], []
    for segments in batch.segments:
        if segments.kind == "text":
            memory, relevance = torch.zeros(0, *width), torch.zeros(0)
        else:
            memory, relevance = next(parts)
        memories.append(memory)
        relevances.append(relevance)
        counts.append(len(memory))
    reference = next((m for m in memories if len(m)), memories[0])
    memory = torch.cat([m.to(reference) for m in memories])
    query_agnostic = any(r is None for r in relevances)
    relevance = (
        None if query_agnostic else torch.cat([r.to(reference.device, torch.float32) for r in relevances])
    )
    return CompressorOutput(memory, relevance, counts)


def compress_samples(
    compressor: nn.Module,
    samples: Sequence[Segments],
    queries: Sequence[str],
    micro_batch: int | None,
    on_chunk: Callable[[int], object] | None = None,
) -> CompressorOutput:
    """One compressor call for all samples, or calls of at most ``micro_batch`` segments (``None``: no limit).

    A sample longer than the limit is cut into slices; slices of consecutive samples share a call
    while they fit. ``on_chunk(n)`` is told after each call how many segments it compressed (a
    progress bar's ``update``).
    """
    report = on_chunk or (lambda n: None)
    total = sum(len(s) for s in samples)
    if micro_batch is None or total <= micro_batch:
        out = _checked(compressor, compressor(samples, queries), samples)
        report(total)
        return out
    pieces: list[tuple[Segments, str]] = []
    for segments, query in zip(samples, queries):
        for start in range(0, len(segments), micro_batch):
            pieces.append((segments.slice(start, start + micro_batch), query))
    memories, relevances, call, size = [], [], [], 0
    for piece in [*pieces, None]:
        if piece is None or (call and size + len(piece[0]) > micro_batch):
            chunk = [p[0] for p in call]
            out = _checked(compressor, compressor(chunk, [p[1] for p in call]), chunk)
            memories.append(out.memory)
            relevances.append(out.relevance)
            report(size)
            call, size = [], 0
        if piece is not None:
            call.append(piece)
            size += len(piece[0])
    relevance = None if any(r is None for r in relevances) else torch.cat(relevances)
    return CompressorOutput(torch.cat(memories), relevance, [len(s) for s in samples])


def _checked(compressor: nn.Module, out: CompressorOutput, segments: Sequence[Segments]) -> CompressorOutput:
    """Hold every compressor (including plugins) to the contract: one memory per input segment."""
    expected = [len(s) for s in segments]
    if list(out.num_segments) != expected:
        raise TempoKitError(
            f"compressor {type(compressor).__name__} returned {out.num_segments} segments per sample "
            f"for inputs with {expected}; a compressor must keep one memory per input segment"
        )
    return out
