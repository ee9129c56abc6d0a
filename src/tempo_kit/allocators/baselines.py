"""The allocation baselines of the paper's ablations (Table 2B and 2E).

All respect ``0 ≤ k ≤ k_max`` and ``Σk ≤ B``; none uses more than one sort per call.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tempo_kit.allocators.ata import DEFAULT_EPS, ATAAllocator
from tempo_kit.allocators.base import Allocator, check_request, rank_descending
from tempo_kit.errors import ConfigError
from tempo_kit.registry import ALLOCATORS

PAPER_KEEP_RATIO = 0.5
"""Table 2B: the routing baselines keep 50 % of the segments at k_max = 128 under the 8K budget."""


def kept_count(ratio: float, num_segments: int) -> int:
    """``⌈ratio·N⌉`` segments, robust to float noise (0.7·10 is 7, not 8)."""
    return math.ceil(round(ratio * num_segments, 9))


def _check_ratio(name: str, value: float, *, allow_zero: bool, allow_one: bool, where: str) -> float:
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (low_ok and high_ok):
        bounds = ("[0" if allow_zero else "(0") + ", " + ("1]" if allow_one else "1)")
        raise ConfigError(f"{where}: {name}={value} must lie in {bounds}; the paper uses {PAPER_KEEP_RATIO}")
    return float(value)


@ALLOCATORS.register("uniform")
class UniformAllocator(Allocator):
    """Even split: every segment keeps ``min(k_max, B // N)`` tokens.

    Every segment stays on the timeline with fewer tokens each. Not the paper's Uniform
    Subsampling row (Table 2B keeps fewer segments at full ``k_max``): that is
    :class:`SubsampleAllocator` (``subsample``). Query-agnostic: ignores the relevance and
    ``k_min``. When ``B < N`` every segment gets 0.
    """

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, k_min, num_segments, where="uniform")
        per_segment = request.budget // request.num_segments if request.num_segments else 0
        return request.full(min(request.k_max, per_segment))


def evenly_spaced(count: int, num_segments: int) -> Tensor:
    """``count`` segment indices spread evenly over ``num_segments``: ``⌊i·N/count⌋`` for i < count.

    Starts at the first segment; ``count = N/2`` keeps every other one (0, 2, 4, …), as halving
    the frames does.
    """
    return torch.arange(count, dtype=torch.long) * num_segments // count if count else torch.zeros(0, dtype=torch.long)


@ALLOCATORS.register("subsample")
class SubsampleAllocator(Allocator):
    """The paper's Uniform Subsampling (Table 2B): fewer segments, each at full ``k_max`` tokens.

    Table 2B fixes every baseline's segment capacity at ``k_max`` and meets the budget by keeping
    fewer segments; Uniform Subsampling keeps them evenly spaced in time (the paper halves the
    frames: 8K budget = half of 1024 frames' segments at 128 tokens). Here: ``n = min(N, B // k_max)``
    segments at :func:`evenly_spaced` positions keep ``k_max`` tokens each, the others 0; the
    remainder ``B mod k_max`` stays unspent. When ``B < k_max`` one segment (the first) keeps ``B``.
    Query-agnostic (ignores relevance and ``k_min``).

    The paper drops frames *before* grouping them into segments, so each of its segments spans
    twice the time at half the frame rate; an allocator sees segments already formed, so a kept
    segment here keeps its own frames and the time between kept segments is unseen. Compare
    :class:`UniformAllocator`, which keeps every segment at ``B // N`` tokens.
    """

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, k_min, num_segments, where="subsample")
        n = request.num_segments
        counts = torch.zeros(n, dtype=torch.long)
        if n and request.budget:
            n_keep = min(n, request.budget // request.k_max)
            if n_keep:
                counts[evenly_spaced(n_keep, n)] = request.k_max
            else:
                counts[0] = request.budget
        return counts.to(request.device)


@ALLOCATORS.register("topk")
class TopKAllocator(Allocator):
    """Hard top-k routing (Table 2B): the highest-scoring segments keep ``k_max`` tokens.

    The ``⌈keep_ratio·N⌉`` best segments are filled to ``k_max`` tokens each in score order while
    the budget allows (the last one may get a partial share, later ones nothing); the others get
    0 tokens. With ``anchor_dropped`` every segment first gets an anchor of ``min(k_min, B // N)``
    tokens, so dropped segments keep their place on the timeline.

    Args:
        keep_ratio: fraction of segments kept, in (0, 1]; the paper keeps 50 %.
        anchor_dropped: keep ``k_min`` anchor tokens in dropped segments instead of 0 (Table 2E's idea).
    """

    name = "topk"

    def __init__(self, keep_ratio: float = PAPER_KEEP_RATIO, anchor_dropped: bool = False) -> None:
        super().__init__()
        self.keep_ratio = _check_ratio(
            "keep_ratio", keep_ratio, allow_zero=False, allow_one=True, where=self.name
        )
        self.anchor_dropped = bool(anchor_dropped)

    def extra_repr(self) -> str:
        return f"keep_ratio={self.keep_ratio}, anchor_dropped={self.anchor_dropped}"

    def preference(self, scores: Tensor) -> Tensor:
        """Segment indices from the most to the least wanted."""
        return rank_descending(scores)

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, k_min, num_segments, where=self.name)
        if request.scores is None:
            raise ConfigError(
                f"{self.name}: routing needs relevance scores, got None (query-agnostic compressor); "
                "use allocator 'uniform' or 'random' instead"
            )
        n = request.num_segments
        n_keep = min(kept_count(self.keep_ratio, n), n)
        anchor = min(request.k_min, request.budget // n) if self.anchor_dropped and n else 0
        room = request.k_max - anchor
        rank = torch.arange(n_keep, dtype=torch.long)
        extra = (request.budget - n * anchor - rank * room).clamp(0, room)
        counts = torch.full((n,), anchor, dtype=torch.long)
        counts[self.preference(request.scores)[:n_keep].cpu()] += extra
        return counts.to(request.device)


@ALLOCATORS.register("adversarial")
class AdversarialAllocator(TopKAllocator):
    """Adversarial routing (Table 2B): like ``topk`` but keeps the *lowest*-scoring segments.

    A sanity check of the relevance signal: the paper's accuracy collapses with it.
    """

    name = "adversarial"

    def preference(self, scores: Tensor) -> Tensor:
        return rank_descending(-scores)


@ALLOCATORS.register("random")
class RandomDropAllocator(Allocator):
    """Random segment drop (Table 2B): drop ``⌊drop_ratio·N⌋`` segments at random, share the budget.

    The kept segments each get ``min(k_max, B // kept)``. Query-agnostic (ignores relevance and
    ``k_min``). Deterministic: the same ``seed`` and ``N`` always drop the same segments.

    Args:
        drop_ratio: fraction of segments dropped, in [0, 1); the paper drops 50 %.
        seed: seed of the permutation that picks the kept segments.
    """

    def __init__(self, drop_ratio: float = 1 - PAPER_KEEP_RATIO, seed: int = 0) -> None:
        super().__init__()
        self.drop_ratio = _check_ratio(
            "drop_ratio", drop_ratio, allow_zero=True, allow_one=False, where="random"
        )
        self.seed = int(seed)

    def extra_repr(self) -> str:
        return f"drop_ratio={self.drop_ratio}, seed={self.seed}"

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, k_min, num_segments, where="random")
        n = request.num_segments
        n_keep = kept_count(1 - self.drop_ratio, n)
        generator = torch.Generator().manual_seed(self.seed)
        kept = torch.randperm(n, generator=generator)[:n_keep]
        counts = torch.zeros(n, dtype=torch.long)
        counts[kept] = min(request.k_max, request.budget // n_keep) if n_keep else 0
        return counts.to(request.device)


@ALLOCATORS.register("prune")
class PruneAllocator(ATAAllocator):
    """Hard pruning (Table 2E): ATA with ``k_min = 0``, so irrelevant segments can end with 0 tokens.

    The call's ``k_min`` is ignored (pruning means no anchor); ``mode`` and ``eps`` are ATA's.
    """

    def __init__(self, mode: str = "released", eps: float = DEFAULT_EPS) -> None:
        super().__init__(mode=mode, eps=eps)

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, 0, num_segments, where=f"prune ({self.mode})")
        return self.allocate(request)
