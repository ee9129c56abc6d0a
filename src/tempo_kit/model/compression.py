"""Running a compressor over a batch: the one place that cuts segments into calls.

A compressor is given at most its ``segment_batch_size`` segments per call (see
:class:`~tempo_kit.compressors.Compressor`). Segments are compressed independently, so the cut
changes memory use, never results. Text-only samples can be skipped (they carry a blank image only
so that training touches every parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE
from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.types import CompressorOutput, Segments, TempoBatch


def segment_batch_size(compressor: nn.Module) -> int:
    """Segments per call of ``compressor``: its declared ``segment_batch_size`` (a positive integer)."""
    size = getattr(compressor, "segment_batch_size", DEFAULT_SEGMENT_BATCH_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(
            f"compressor {type(compressor).__name__}: segment_batch_size={size!r} must be a positive integer"
        )
    return size


def check_system_prompt(compressor: nn.Module, system_prompt: str | None) -> None:
    """A prompt can only go to a compressor that takes one (``takes_system_prompt``)."""
    if system_prompt is not None and not getattr(compressor, "takes_system_prompt", False):
        raise ConfigError(
            f"system prompt {system_prompt!r} given, but compressor {type(compressor).__name__} takes none "
            "(only instruction-following compressors such as qwen3_vl do); leave the prompt unset"
        )


def compress_batch(
    compressor: nn.Module,
    batch: TempoBatch,
    *,
    skip_text: bool = False,
    system_prompt: str | None = None,
    on_chunk: Callable[[int], object] | None = None,
) -> CompressorOutput:
    """Run ``compressor`` over every segment of ``batch`` (see :func:`compress_samples`).

    With ``skip_text`` a text-only sample's blank image is not compressed; it gets 0 segments.
    """
    if not skip_text or all(s.kind != "text" for s in batch.segments):
        return compress_samples(compressor, batch.segments, batch.queries, system_prompt, on_chunk)
    keep = [i for i, s in enumerate(batch.segments) if s.kind != "text"]
    width = (compressor.k_max, compressor.hidden_size)
    kept = [batch.segments[i] for i in keep]
    queries = [batch.queries[i] for i in keep]
    parts = iter(compress_samples(compressor, kept, queries, system_prompt, on_chunk).split() if keep else [])
    memories, relevances = [], []
    for segments in batch.segments:
        if segments.kind == "text":
            memory, relevance = torch.zeros(0, *width), torch.zeros(0)
        else:
            memory, relevance = next(parts)
        memories.append(memory)
        relevances.append(relevance)
    reference = next((m for m in memories if len(m)), memories[0])
    memory = torch.cat([m.to(reference) for m in memories])
    query_agnostic = any(r is None for r in relevances)
    relevance = (
        None if query_agnostic else torch.cat([r.to(reference.device, torch.float32) for r in relevances])
    )
    return CompressorOutput(memory, relevance, [len(m) for m in memories])


def compress_samples(
    compressor: nn.Module,
    samples: Sequence[Segments],
    queries: Sequence[str],
    system_prompt: str | None = None,
    on_chunk: Callable[[int], object] | None = None,
) -> CompressorOutput:
    """All segments of all samples, in calls of exactly the compressor's ``segment_batch_size``
    (the last one may be shorter).

    Samples are cut into slices wherever a call fills up, so a call may hold the end of one sample
    and the start of the next. ``on_chunk(n)`` is told after each call how many segments it
    compressed (a progress bar's ``update``).
    """
    check_system_prompt(compressor, system_prompt)
    size = segment_batch_size(compressor)
    report = on_chunk or (lambda n: None)
    prompt = {} if system_prompt is None else {"system_prompt": system_prompt}
    outputs: list[CompressorOutput] = []
    call: list[tuple[Segments, str]] = []
    room = size

    def run() -> None:
        chunk = [piece for piece, _ in call]
        outputs.append(_checked(compressor, compressor(chunk, [query for _, query in call], **prompt), chunk))
        report(sum(len(piece) for piece in chunk))

    for segments, query in zip(samples, queries):
        start = 0
        while start < len(segments):
            take = min(room, len(segments) - start)
            whole = start == 0 and take == len(segments)
            call.append((segments if whole else segments.slice(start, start + take), query))
            start, room = start + take, room - take
            if room == 0:
                run()
                call, room = [], size
    if call or not outputs:
        run()
    return join_calls(outputs, [len(s) for s in samples])


def join_calls(calls: Sequence, num_segments: Sequence[int]) -> CompressorOutput:
    """One output from consecutive compressor calls (each with ``memory`` and ``relevance``).

    The relevance is ``None`` when any call gave none (a query-agnostic compressor).
    """
    relevances = [call.relevance for call in calls]
    relevance = None if any(r is None for r in relevances) else torch.cat(relevances)
    return CompressorOutput(torch.cat([call.memory for call in calls]), relevance, list(num_segments))


def _checked(compressor: nn.Module, out: CompressorOutput, segments: Sequence[Segments]) -> CompressorOutput:
    """Hold every compressor (including plugins) to the contract: one memory per input segment."""
    expected = [len(s) for s in segments]
    if list(out.num_segments) != expected:
        raise TempoKitError(
            f"compressor {type(compressor).__name__} returned {out.num_segments} segments per sample "
            f"for inputs with {expected}; a compressor must keep one memory per input segment"
        )
    return out
