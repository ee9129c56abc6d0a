"""Answer several questions at once — about one video or several — in shared forward passes.

>>> from tempo_kit.inference.batched import Ask, answer_batch
>>> results = answer_batch(pipe, [Ask(session_a, pipe.question("Who?")),        # doctest: +SKIP
...                               Ask(session_b, pipe.question("Where?"))])

What is shared, and what each question keeps to itself:

- **Prefixes**: each session computes the prefixes it lacks in the calls a lone question makes
  (:meth:`VideoSession.prefixes <tempo_kit.inference.session.VideoSession.prefixes>`), so they are
  the same tensors; a follow-up finds them cached.
- **Suffix calls**: the rows (segment prefix, compressor query) of every question go through the
  compressor together, split into calls by the planner a single question uses
  (:func:`~tempo_kit.model.compression.plan_calls`: ``segment_batch_size`` and
  ``call_token_budget``, each row counted as its whole segment's sequence), so a batch never
  runs a larger call than one question would.
- **Decoder**: questions with the same generation settings (budget, allocator, reduction,
  ``max_new_tokens``, …) are decoded as one left-padded batch; each row stops at its own
  end of turn, or when its own ``stopping_criteria`` say so (a client that left), and streams
  to its own ``streamer``. Questions with other settings form another batch.

Greedy answers equal :meth:`TempoPipeline.answer` one by one: the per-row arithmetic is the same,
only the padding around each row differs (masked out); fp32 on CPU can move a value in its last
bits, which greedy argmax over the tiny and the real vocabularies has not turned into another token
in the tests. Questions that cannot share (``relevance="base"``, a compressor without a prefix
cache) are answered one by one inside the batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from tempo_kit.compressors.base import padded_tokens
from tempo_kit.inference.api import generation_settings
from tempo_kit.inference.question import Question
from tempo_kit.inference.result import InferenceResult
from tempo_kit.model.compression import (
    call_token_budget,
    join_calls,
    plan_calls,
    segment_batch_size,
    segment_token_counts,
)
from tempo_kit.types import CompressorOutput


@dataclass
class Ask:
    """One question of a batch: the session of its video, the resolved question, and its hooks.

    Attributes:
        session: the :class:`~tempo_kit.inference.session.VideoSession` of its video.
        question: from :meth:`TempoPipeline.question <tempo_kit.inference.api.TempoPipeline.question>`
            with the session's sampling.
        streamer: a ``transformers`` streamer for this row alone (``put`` gets ``[1, n]`` ids).
        stop: ``() -> bool``: end this row's answer at its next token when true.
    """

    session: Any
    question: Question
    streamer: Any = None
    stop: Callable[[], bool] | None = None


def answer_batch(pipeline: Any, asks: Sequence[Ask]) -> list[InferenceResult | Exception]:
    """Each ask's result, or the error that refused it (a bad option fails its own question only)."""
    results: list[InferenceResult | Exception | None] = [None] * len(asks)
    shared = []
    for index, ask in enumerate(asks):
        try:
            if ask.question.relevance == "base" or not ask.session.caches_prefixes(ask.question):
                results[index] = one_by_one(pipeline, ask)
            else:
                shared.append(index)
        except Exception as error:  # noqa: BLE001 - the caller answers each question with its own error
            results[index] = error
    if shared:
        start = time.perf_counter()
        try:
            memories = compress_together(pipeline, [asks[i] for i in shared])
        except Exception:  # noqa: BLE001 - which question failed is found by answering one by one
            for i in shared:
                results[i] = _run(one_by_one, pipeline, asks[i])
        else:
            for group in _groups(asks, shared):
                _decode(pipeline, asks, group, {i: memories[shared.index(i)] for i in group}, start, results)
    return results  # type: ignore[return-value]


def one_by_one(pipeline: Any, ask: Ask) -> InferenceResult:
    """``ask`` alone: the session's :meth:`ask` path with its hooks."""
    return pipeline.answer(question=ask.question, source=ask.session, **_hooks([ask]))


def compress_together(pipeline: Any, asks: Sequence[Ask]) -> list[Any]:
    """The :class:`~tempo_kit.inference.sources.Memory` of each ask, their suffix rows in shared calls."""
    compressor = pipeline.model.compressor
    rows, counts, owners, fresh, reused = [], [], [], [], []
    budget = call_token_budget(compressor)
    tick = time.perf_counter()
    for index, ask in enumerate(asks):
        prefixes, prefix_tokens, was_cached = ask.session.prefixes(ask.question)
        fresh.append(prefix_tokens)
        reused.append(was_cached)
        question = ask.question
        rows += [(prefix, question.compressor_query) for prefix in prefixes]
        owners += [index] * len(prefixes)
        if budget is None:
            counts += [1] * len(prefixes)
        else:
            counts += segment_token_counts(
                compressor, [ask.session.segments], [question.compressor_query], question.system_prompt, budget
            )
    # suffix calls after cached prefixes pad even when the compressor's own forward packs
    calls = plan_calls(counts, segment_batch_size(compressor), budget, padded_tokens)
    pieces: list[list[Any]] = [[] for _ in asks]
    tokens = [0] * len(asks)
    first = 0
    for size in calls:
        part = rows[first : first + size]
        out = compressor.compress_with_prefixes([p for p, _ in part], [q for _, q in part])
        row_tokens = out.row_tokens or _spread(out.tokens, size)
        for row in range(size):
            owner = owners[first + row]
            relevance = None if out.relevance is None else out.relevance[row : row + 1]
            pieces[owner].append(CompressorOutput(out.memory[row : row + 1], relevance, [1]))
            tokens[owner] += row_tokens[row]
        first += size
    seconds = time.perf_counter() - tick
    return [
        ask.session.memory_of(join_calls(pieces[i], [len(pieces[i])]), fresh[i] + tokens[i], reused[i], seconds)
        for i, ask in enumerate(asks)
    ]


def decoder_batch(pipeline: Any, questions: Sequence[Question], memories: Sequence[Any]) -> tuple[Any, CompressorOutput]:
    """The decoder's batch (row ``i``: question ``i``'s prompt, its earlier turns as chat turns)
    and the compressor output of all rows, each question's segments in order."""
    from tempo_kit.model import inference_batch

    batch = inference_batch(
        pipeline.model.tokenizer,
        [m.segments for m in memories],
        [q.query for q in questions],
        histories=[q.history for q in questions],
    )
    batch.queries = [q.compressor_query for q in questions]
    outputs = [m.compressed for m in memories]
    return batch, join_calls(outputs, [n for o in outputs for n in o.num_segments])


def _decode(pipeline, asks, group, memories, start, results) -> None:
    """One decoder batch over ``group`` (asks with the same generation settings)."""
    chosen = [asks[i] for i in group]
    mems = [memories[i] for i in group]
    questions = [a.question for a in chosen]
    try:
        batch, compressed = decoder_batch(pipeline, questions, mems)
        out = pipeline.model.generate(
            batch, compressed=compressed, **generation_settings(questions[0]), **_hooks(chosen)
        )
    except Exception:  # noqa: BLE001 - a refused setting (an allocation that cannot fit) fails alone
        for i in group:
            results[i] = _run(one_by_one, pipeline, asks[i])
        return
    seconds = time.perf_counter() - start
    for row, i in enumerate(group):
        results[i] = pipeline.result(questions[row], mems[row], out, row, seconds)


def _groups(asks: Sequence[Ask], indices: Sequence[int]) -> list[list[int]]:
    """``indices`` grouped by the generation settings of their questions, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i in indices:
        key = json.dumps(generation_settings(asks[i].question), sort_keys=True, default=repr)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _hooks(asks: Sequence[Ask]) -> dict[str, Any]:
    """``generate``'s ``streamer`` and ``stopping_criteria`` for a batch whose rows are ``asks``."""
    hooks: dict[str, Any] = {}
    if any(a.stop is not None for a in asks):
        hooks["stopping_criteria"] = StoppingCriteriaList([RowStops([a.stop for a in asks])])
    if len(asks) == 1 and asks[0].streamer is not None:
        hooks["streamer"] = asks[0].streamer
    elif any(a.streamer is not None for a in asks):
        hooks["streamer"] = RowStreamers([a.streamer for a in asks])
    return hooks


class RowStops(StoppingCriteria):
    """Per-row stop: row ``i`` ends at its next token once ``stops[i]()`` is true."""

    def __init__(self, stops: Sequence[Callable[[], bool] | None]) -> None:
        self.stops = list(stops)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        flags = [bool(stop is not None and stop()) for stop in self.stops]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


class RowStreamers(BaseStreamer):
    """Hands row ``i`` of each batched ``put`` to ``streamers[i]``, which expects one row.

    ``transformers``' streamers take batches of one; a decoder batch of several questions gives
    each step's ``[B]`` new ids (after the ``[B, n]`` prompt) to this one, which splits them.
    """

    def __init__(self, streamers: Sequence[Any]) -> None:
        self.streamers = list(streamers)

    def put(self, value: torch.Tensor) -> None:
        for row, streamer in enumerate(self.streamers):
            if streamer is not None:
                streamer.put(value[row : row + 1])

    def end(self) -> None:
        for streamer in self.streamers:
            if streamer is not None:
                streamer.end()


def _run(fn: Callable[..., InferenceResult], *args: Any) -> InferenceResult | Exception:
    try:
        return fn(*args)
    except Exception as error:  # noqa: BLE001 - handed to the caller as this question's answer
        return error


def _spread(tokens: int, rows: int) -> list[int]:
    """``tokens`` split evenly over ``rows`` (a compressor that does not count per row)."""
    return [tokens // rows + (row < tokens % rows) for row in range(rows)]
