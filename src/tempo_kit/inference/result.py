"""What one answer returns: the reply, the per-segment allocation, token counts and timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo_kit.types import Allocation
from tempo_kit.video.sampling import DEFAULT_SAMPLE_FPS


@dataclass
class InferenceResult:
    """One answer and how it was reached.

    Attributes:
        answer: the LLM's reply.
        query: the question asked.
        video: the video's path (``None`` for frames passed in memory).
        allocation: per-segment ``counts``, ``relevance`` and ``times`` (seconds), with the budget,
            ``k_min`` and ``k_max`` it was computed under (counts after the context cap).
        num_frames: frames sampled from the video.
        duration: the video's length in seconds (``None`` when unknown).
        window: frames per segment.
        timings: seconds per phase: ``decode``, ``compress``, ``allocate``, ``generate``, ``total``.
        settings: allocator, reduction, relevance source and prompt, sampling used.
        reused: phases taken from the previous call on the same video (``"decode"``,
            ``"compress"``) when the pipeline reuses the last video; their timings are then ~0.
            A session's follow-up questions list ``"decode"`` and ``"prefix"`` (cached SVLM prefixes).
        svlm_inputs: per segment, what the SVLM saw — ``svlm_grid`` [t, h, w] in patches and
            ``frame_times``, its per-temporal-patch time tags in seconds (``None`` when the
            compressor does not say).
        svlm_tokens: tokens the SVLM computed for this answer (a session's follow-up question runs
            only its own and the memory tokens); ``None`` where not counted.
        time_tags: per segment, the time-tag text the LLM read (``<2.1 seconds>``): the exact
            tag, where the rounded ``time`` in seconds may round the other way.
    """

    answer: str
    query: str
    video: str | None
    allocation: Allocation
    num_frames: int
    duration: float | None
    window: int
    timings: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    reused: tuple[str, ...] = ()
    svlm_inputs: list[dict[str, Any]] | None = None
    svlm_tokens: int | None = None
    time_tags: list[str] | None = None

    @property
    def tokens_used(self) -> int:
        """Visual tokens the LLM read."""
        return self.allocation.total

    @property
    def budget(self) -> int | None:
        return self.allocation.budget

    @property
    def num_segments(self) -> int:
        return int(self.allocation.counts.numel())

    @property
    def kept_segments(self) -> int:
        return self.allocation.kept_segments

    @property
    def tokens_per_frame(self) -> float:
        """Visual tokens per sampled frame (the paper's "actual avg. toks/frame", Table 1)."""
        return self.tokens_used / max(self.num_frames, 1)

    def token_stats(self) -> dict[str, Any]:
        """The per-sample token record the evaluation harness stores."""
        return {
            "visual_tokens": self.tokens_used,
            "budget": self.budget,
            "num_frames": self.num_frames,
            "tokens_per_frame": self.tokens_per_frame,
            "num_segments": self.num_segments,
            "kept_segments": self.kept_segments,
            "k_min": self.allocation.k_min,
            "k_max": self.allocation.k_max,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the answer, token statistics, timings, and the per-segment allocation."""
        return {
            "answer": self.answer,
            "query": self.query,
            "video": self.video,
            "duration": self.duration,
            "window": self.window,
            "tokens": self.token_stats(),
            "timings": dict(self.timings),
            "settings": dict(self.settings),
            "reused": list(self.reused),
            "svlm_tokens": self.svlm_tokens,
            "segments": self.segment_records(),
        }

    def segment_records(self) -> list[dict[str, Any]]:
        """One record per segment: its LLM ``time`` tag, ``relevance``, ``tokens`` kept, and what
        the SVLM saw (``svlm_grid``, per-patch ``frame_times``) — the things to check when a
        pipeline's inputs are in doubt. ``time_tag`` is the tag's text as the LLM read it."""
        relevance = self.allocation.relevance
        records = []
        for i, (time_s, count) in enumerate(zip(self.allocation.times, self.allocation.counts)):
            record: dict[str, Any] = {
                "time": round(float(time_s), 3),
                "time_tag": None if self.time_tags is None else self.time_tags[i],
                "relevance": None if relevance is None else round(float(relevance[i]), 6),
                "tokens": int(count),
            }
            if self.svlm_inputs is not None:
                record.update(self.svlm_inputs[i])
            records.append(record)
        return records

    def plot(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the allocation-over-time figure; ``kwargs`` go to
        :func:`~tempo_kit.inference.plots.plot_allocation` (e.g. ``highlight=(start, end)``)."""
        from tempo_kit.inference.plots import plot_allocation

        seconds = self.window / float(self.settings.get("real_fps", DEFAULT_SAMPLE_FPS))
        return plot_allocation(
            self.allocation, path, query=self.query, answer=self.answer, segment_seconds=seconds, **kwargs
        )
