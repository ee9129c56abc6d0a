"""``GET /metrics``: the server's counters in Prometheus' text format.

Written by hand rather than with ``prometheus_client``: a dozen numbers read from the cache and
the worker at scrape time need no collector registry, and that library's process-wide default
registry would clash when several servers live in one process.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RequestCounters:
    """Requests answered per HTTP status, questions answered, their summed latency, videos decoded."""

    by_status: Counter = field(default_factory=Counter)
    answered: int = 0
    prefix_reused: int = 0
    latency_sum: float = 0.0
    decodes: int = 0


def prometheus_text(requests: RequestCounters, cache, worker) -> str:
    """The exposition text: ``# HELP``/``# TYPE`` then one sample line per value."""
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value if isinstance(value, int) else repr(float(value))}" for labels, value in samples)

    metric("tempo_video_cache_hits_total", "counter", "Questions whose video was cached or being opened.", [("", cache.hits)])
    metric("tempo_video_cache_misses_total", "counter", "Questions that opened their video.", [("", cache.misses)])
    metric("tempo_video_cache_evictions_total", "counter", "Videos evicted under the byte cap.", [("", cache.evictions)])
    metric("tempo_video_cache_bytes", "gauge", "Bytes of frames and SVLM prefixes cached.", [("", cache.nbytes)])
    metric("tempo_video_cache_max_bytes", "gauge", "The cache's byte cap.", [("", cache.max_bytes)])
    metric("tempo_video_cache_entries", "gauge", "Videos cached.", [("", len(cache))])
    metric("tempo_model_queue", "gauge", "Model jobs queued or running.", [("", worker.queued)])
    metric("tempo_model_jobs_dropped_total", "counter", "Queued jobs whose client left first.", [("", worker.dropped)])
    metric("tempo_model_batches_total", "counter", "Batches of questions the model ran.", [("", worker.batches)])
    metric("tempo_model_batch_questions_total", "counter", "Questions answered in those batches.", [("", worker.batched_questions)])
    metric("tempo_model_largest_batch", "gauge", "Most questions in one batch so far.", [("", worker.largest_batch)])
    metric("tempo_video_decodes_total", "counter", "Videos whose frames were decoded.", [("", requests.decodes)])
    metric("tempo_questions_answered_total", "counter", "Questions answered.", [("", requests.answered)])
    metric("tempo_prefix_reused_total", "counter", "Answers that reused cached SVLM prefixes.", [("", requests.prefix_reused)])
    metric("tempo_answer_seconds_sum", "counter", "Seconds spent answering, summed.", [("", requests.latency_sum)])
    metric(
        "tempo_http_responses_total",
        "counter",
        "Chat completion responses per HTTP status.",
        [(f'{{status="{status}"}}', n) for status, n in sorted(requests.by_status.items())],
    )
    return "\n".join(lines) + "\n"
