"""What every compressor checks before it compresses, and the paper's memory-token count.

Public so that a new compressor (``pooling`` is the template) uses the same checks and messages as
Tempo's own without importing another compressor's module.
"""

from __future__ import annotations

from collections.abc import Sequence

from tempo_kit.errors import ConfigError
from tempo_kit.types import Segments

#: Memory tokens per segment (paper: k_max = 128).
K_MAX = 128


def validate_inputs(segments: Sequence[Segments], queries: Sequence[str], require_query: bool = True) -> None:
    """One query per sample (non-empty if ``require_query``), at least one segment each, or a :class:`ConfigError`."""
    if len(segments) != len(queries):
        raise ConfigError(
            f"got {len(segments)} samples of segments but {len(queries)} queries; pass one per sample"
        )
    for index, (sample, query) in enumerate(zip(segments, queries)):
        name = sample.source or f"sample {index}"
        if require_query and (not isinstance(query, str) or not query.strip()):
            raise ConfigError(
                f"the compressor query of {name} (sample {index}) is empty; the query-aware compressor "
                "needs the question text"
            )
        if len(sample) == 0:
            raise ConfigError(f"{name} (sample {index}) has no segments")


def check_sizes(k_max: int, segment_batch_size: int, call_token_budget: int | None = None) -> None:
    """``k_max`` and ``segment_batch_size`` are positive integers, ``call_token_budget`` one or
    ``None`` (:class:`ConfigError` naming the key otherwise)."""
    if not isinstance(k_max, int) or k_max < 1:
        raise ConfigError(f"compressor k_max must be a positive integer, got {k_max!r}")
    if not isinstance(segment_batch_size, int) or segment_batch_size < 1:
        raise ConfigError(
            f"compressor segment_batch_size must be a positive integer, got {segment_batch_size!r}"
        )
    check_call_token_budget(call_token_budget, "compressor call_token_budget")


def check_call_token_budget(budget: object, key: str) -> None:
    """A per-call token budget is a positive integer or ``None`` (no budget); ``key`` names where it was set."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ConfigError(
            f"{key}={budget!r} must be a positive integer (most tokens one compressor call may hold) "
            "or null for no token budget"
        )
