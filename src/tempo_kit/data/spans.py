"""Relevant spans: which segments of a video hold the evidence for a question.

An annotation row may carry ``relevant_spans: [[start_s, end_s], ...]``, the time ranges (in seconds
from the start of the video) where the answer is seen, as temporal-grounding datasets label them.
They are the router stage's targets and the routing diagnostics' ground truth.

The rule, in one place (:func:`segment_labels`): segment ``i`` covers the half-open interval
``[start_i, start_{i+1})`` from the time of its first sampled frame to the next segment's first
frame (the last segment ends at the video's duration), on the segments' time base
(``Segments.frame_times``). A segment is *relevant* when that interval
overlaps a span by more than zero seconds; a span of zero length (an instant ``[t, t]``) marks the
segment whose interval contains ``t``.

Bad spans are refused with the row and the fix: not a list of ``[start, end]`` number pairs, a
negative start, ``end < start``, or (once the duration is known) a span that starts at or after
the end of the video. An end past the video's end is cut to the duration: grounding datasets
often round the last span up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from tempo_kit.errors import TempoKitError
from tempo_kit.types import Segments

Span = tuple[float, float]

#: The annotation key holding the spans.
SPANS_KEY = "relevant_spans"


class SpanError(TempoKitError, ValueError):
    """A ``relevant_spans`` value is malformed or lies outside its video."""


def _number(value: Any) -> bool:
    """A finite number of seconds: NaN and infinity are no times (and no valid JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_spans(value: Any, where: str, duration: float | None = None) -> list[Span]:
    """Check a row's ``relevant_spans`` value and return it as ``(start, end)`` float pairs.

    ``duration`` (seconds), when known, refuses spans that start at or after the video's end and
    cuts ends past it. Raises :class:`SpanError` naming ``where`` and the bad span.
    """
    if not isinstance(value, (list, tuple)):
        raise SpanError(
            f"{where}: {SPANS_KEY} must be a list of [start_s, end_s] pairs, got {type(value).__name__}"
        )
    spans = []
    for number, span in enumerate(value):
        if not isinstance(span, (list, tuple)) or len(span) != 2 or not all(_number(v) for v in span):
            raise SpanError(
                f"{where}: {SPANS_KEY}[{number}] must be [start_s, end_s] (two finite numbers), got {span!r}"
            )
        start, end = float(span[0]), float(span[1])
        if start < 0:
            raise SpanError(f"{where}: {SPANS_KEY}[{number}] = {list(span)} starts before 0 s")
        if end < start:
            raise SpanError(
                f"{where}: {SPANS_KEY}[{number}] = {list(span)} ends before it starts; write [start_s, end_s]"
            )
        if duration is not None:
            if start >= duration:
                raise SpanError(
                    f"{where}: {SPANS_KEY}[{number}] = {list(span)} starts at or after the end of the "
                    f"video ({duration:.2f} s); check the span or the video file"
                )
            end = min(end, float(duration))
        spans.append((start, end))
    return spans


def segment_bounds(segments: Segments, duration: float) -> Tensor:
    """``[S, 2]`` float64 ``(start, end)`` of every segment: first frame to the next segment's first frame.

    The last segment ends at ``duration`` (never before its own last frame).
    """
    starts = segments.frame_times[:, 0].to(torch.float64)
    last = segments.frame_times[-1].max().to(torch.float64)
    ends = torch.cat(
        [starts[1:], torch.maximum(last, torch.tensor(float(duration), dtype=torch.float64))[None]]
    )
    return torch.stack([starts, ends], dim=1)


def segment_labels(bounds: Tensor, spans: Sequence[Span]) -> Tensor:
    """Float ``[S]``: 1 for a segment whose interval overlaps a span (module rule), else 0."""
    labels = torch.zeros(len(bounds), dtype=torch.float32)
    starts, ends = bounds[:, 0], bounds[:, 1]
    for start, end in spans:
        if end > start:
            hit = (starts < end) & (ends > start)
        else:  # an instant: the segment whose interval holds it
            hit = (starts <= start) & (ends > start)
            if not hit.any() and start >= float(ends[-1]):
                hit[-1] = True
        labels[hit] = 1.0
    return labels
