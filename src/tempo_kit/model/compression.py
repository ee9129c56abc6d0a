"""Running a compressor over a batch: the one place that cuts segments into calls.

A compressor is given at most its ``segment_batch_size`` segments per call and, when it declares a
``call_token_budget``, at most that many tokens (see :class:`~tempo_kit.compressors.Compressor`).
Segments are compressed independently, so the cut changes memory use, never results. Text-only
samples can be skipped (they carry a blank image only so that training touches every parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial

import torch
from torch import nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE, Compressor, padded_tokens
from tempo_kit.compressors.inputs import check_call_token_budget
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


def call_token_budget(compressor: nn.Module) -> int | None:
    """Tokens per call of ``compressor``: its declared ``call_token_budget`` (``None``: no budget)."""
    budget = getattr(compressor, "call_token_budget", None)
    check_call_token_budget(budget, f"compressor {type(compressor).__name__}: call_token_budget")
    return budget


def plan_calls(
    counts: Sequence[int],
    size: int,
    budget: int | None = None,
    cost: Callable[[Sequence[int]], int] = padded_tokens,
) -> list[int]:
    """Segments per call, in order, for segments of ``counts`` tokens each.

    Greedy: a call takes the next segment while it holds fewer than ``size`` segments and, with a
    ``budget``, while ``cost`` of its counts with that segment stays within it. ``cost`` is the
    compressor's :meth:`~tempo_kit.compressors.Compressor.call_tokens` (padded: count × longest).
    Neither cost falls when a segment is added, so every call is as long as it can be. A segment
    over the budget on its own still gets a call of its own; :func:`compress_samples` refuses it first.
    """
    calls: list[int] = []
    current: list[int] = []
    for count in counts:
        full = len(current) == size or (budget is not None and cost([*current, count]) > budget)
        if current and full:
            calls.append(len(current))
            current = []
        current.append(count)
    if current:
        calls.append(len(current))
    return calls


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
    """All segments of all samples, in calls of the compressor's ``segment_batch_size`` segments
    and, if it sets one, within its ``call_token_budget`` (see :func:`plan_calls`).

    Samples are cut into slices wherever a call fills up, so a call may hold the end of one sample
    and the start of the next. With a budget, every segment's tokens are counted first
    (``compressor.segment_tokens``) and a segment that alone exceeds the budget is refused before
    any call runs: the budget is a bound on a call's memory, and running that segment anyway would
    break the bound the user set. ``on_chunk(n)`` is told after each call how many segments it
    compressed (a progress bar's ``update``).
    """
    check_system_prompt(compressor, system_prompt)
    plan = call_plan(compressor, samples, queries, system_prompt)
    report = on_chunk or (lambda n: None)
    prompt = {} if system_prompt is None else {"system_prompt": system_prompt}
    outputs: list[CompressorOutput] = []

    def run(call: list[tuple[int, int, int]]) -> None:
        chunk = [samples[i] if (first, last) == (0, len(samples[i])) else samples[i].slice(first, last) for i, first, last in call]
        outputs.append(_checked(compressor, compressor(chunk, [queries[i] for i, _, _ in call], **prompt), chunk))
        report(sum(len(piece) for piece in chunk))

    for call in plan_pieces(plan, [len(s) for s in samples]):
        run(call)
    if not outputs:
        run([])
    return join_calls(outputs, [len(s) for s in samples])


def plan_pieces(plan: Sequence[int], lengths: Sequence[int]) -> Iterator[list[tuple[int, int, int]]]:
    """Each call of ``plan`` as its pieces ``(sample, first, last)`` of samples of ``lengths``
    segments: the one executor of a call plan (:func:`compress_samples`, sessions). A call may
    hold the end of one sample and the start of the next."""
    calls = iter(plan)
    room = next(calls, 0)
    call: list[tuple[int, int, int]] = []
    for index, length in enumerate(lengths):
        start = 0
        while start < length:
            if room < 1:
                raise ValueError(f"call plan {list(plan)} does not cover samples of {list(lengths)} segments")
            take = min(room, length - start)
            call.append((index, start, start + take))
            start, room = start + take, room - take
            if room == 0:
                yield call
                call, room = [], next(calls, 0)
    if call:
        yield call


def call_plan(
    compressor: nn.Module,
    samples: Sequence[Segments],
    queries: Sequence[str],
    system_prompt: str | None = None,
    *,
    padded: bool = False,
) -> list[int]:
    """Segments per call of ``compressor`` over every segment of ``samples`` (see :func:`plan_calls`).

    Without a ``call_token_budget`` nothing is counted: calls of ``segment_batch_size``, the last
    one shorter. With one, a segment over it alone is refused (:func:`segment_token_counts`).
    ``padded`` costs calls as padded batches whatever the compressor's ``call_tokens`` says: for
    a path that pads even when the compressor's own forward packs (the prefix-cache calls).
    """
    size = segment_batch_size(compressor)
    budget = call_token_budget(compressor)
    if budget is None:
        return plan_calls([1] * sum(len(s) for s in samples), size)
    counts = segment_token_counts(compressor, samples, queries, system_prompt, budget)
    return plan_calls(counts, size, budget, padded_tokens if padded else _call_cost(compressor))


def segment_token_counts(
    compressor: nn.Module,
    samples: Sequence[Segments],
    queries: Sequence[str],
    system_prompt: str | None,
    budget: int,
) -> list[int]:
    """Tokens of every segment of every sample, in order; a segment over ``budget`` alone is refused."""
    count = getattr(compressor, "segment_tokens", None)
    if not callable(count):  # a plugin that is no Compressor subclass: the interface's own refusal
        count = partial(Compressor.segment_tokens, compressor)
    prompt = {} if system_prompt is None else {"system_prompt": system_prompt}
    cost = _call_cost(compressor)
    out: list[int] = []
    for index, (segments, query) in enumerate(zip(samples, queries)):
        counts = [int(c) for c in count(segments, query, **prompt)]
        if len(counts) != len(segments) or any(c < 1 for c in counts):
            raise TempoKitError(
                f"compressor {type(compressor).__name__}.segment_tokens gave {counts} for {len(segments)} "
                "segments; it must give one positive count per segment"
            )
        for j, tokens in enumerate(counts):
            if cost([tokens]) > budget:
                raise ConfigError(
                    f"segment {j} of {segments.source or f'sample {index}'} needs {cost([tokens])} tokens in one "
                    f"compressor call, over call_token_budget={budget}; raise model.compressor.call_token_budget "
                    f"to at least {cost([tokens])} (or set it to null)"
                )
        out.extend(counts)
    return out


def _call_cost(compressor: nn.Module) -> Callable[[Sequence[int]], int]:
    """The compressor's :meth:`~tempo_kit.compressors.Compressor.call_tokens` (padded if it has none)."""
    cost = getattr(compressor, "call_tokens", None)
    return cost if callable(cost) else padded_tokens


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
