"""Adaptive Token Allocation (paper Sec. 3.4, Alg. 1), as released and budget-exact.

Both modes share one picture: a segment with normalised score ŝ keeps
``k_min + min(k_max − k_min, λ·ŝ)`` tokens for some scale λ. The released algorithm picks
λ = k_max − k_min (Eq. 3) when that fits the budget and λ = B_res / Σŝ (Eq. 4) otherwise,
so it often spends less than the budget on purpose (the paper's sparsity), and its final clamp
can leave budget unused. The ``exact`` mode takes the largest λ that fits, letting segments
saturate at ``k_max`` (water-filling), so it spends ``min(B, N·k_max)`` tokens whenever the
scores are not all equal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tempo_kit.allocators.base import AllocationRequest, Allocator, check_request, mask_of, rank_descending
from tempo_kit.errors import ConfigError, check_choice
from tempo_kit.registry import ALLOCATORS

ATA_MODES = ("released", "exact")
DEFAULT_EPS = 1e-6
"""ε of the ``exact`` mode's min–max normalisation (keeps ŝ < 1; the released mode has none)."""


def normalise(scores: Tensor, eps: float) -> Tensor:
    """Min–max scaling of Alg. 1: ŝ = (s − min s) / (max s − min s + ε), in [0, 1).

    Scores whose range overflows float64 (beyond ±1e308) are first divided by their largest
    magnitude, which keeps their order.
    """
    low, high = scores.min(), scores.max()
    if not bool(torch.isfinite(high - low)):
        scores = scores / scores.abs().max()
        low, high = scores.min(), scores.max()
    return (scores - low) / (high - low + eps)


def to_float32(scores: Tensor) -> Tensor:
    """The released code's float32 scores; scores beyond float32's range are first divided by their
    largest magnitude (order kept) instead of overflowing to ±inf."""
    if bool((scores.abs() > torch.finfo(torch.float32).max).any()):
        scores = scores / scores.abs().max()
    return scores.to(torch.float32)


def keep_top(scores: Tensor, count: int) -> Tensor:
    """One token for the ``count`` highest-scoring segments, 0 for the rest (ties: earlier first)."""
    return mask_of(rank_descending(scores)[:count], scores.numel()).long()


def evenly_spaced(num_segments: int, count: int, device: torch.device) -> Tensor:
    """One token for ``count`` segments spread evenly over time (centres of ``count`` equal bins)."""
    index = ((2 * torch.arange(count, device=device) + 1) * num_segments) // (2 * count)
    return mask_of(index, num_segments).long()


#: Released: scores whose range is below this count as all equal (every segment gets B // N).
RELEASED_TIE_RANGE = 1e-8
#: Released Eq. 4: a normalised-score sum below this shares the residual budget uniformly.
RELEASED_ZERO_SUM = 1e-8


def ata_released(request: AllocationRequest) -> Tensor:
    """Alg. 1 as the released Tempo code computes it (compatibility §3), in float32.

    1. If ``N·k_min > B``, ``k_min`` becomes ``max(1, B // N)``.
    2. If ``max s − min s < 1e-8`` (or there are no scores), every segment gets ``min(k_max, B // N)``.
    3. Only if ``B < N`` and step 1 fired: the ``B`` highest-scoring segments keep 1 token and the
       rest 0. (The released code gives every segment 1 token here and exceeds the budget; the
       kit keeps the budget.)
    4. ``ŝ = (s − min s) / (max s − min s)`` with no ε, so the top segment gets exactly ``k_max``
       under Eq. 3 ``k = k_min + ⌊(k_max − k_min)·ŝ⌋``; kept if ``Σk ≤ B``.
    5. Otherwise Eq. 4: weights ``ŝ / Σŝ`` (uniform ``1/N`` if ``Σŝ < 1e-8``),
       ``k = k_min + ⌊weight·(B − N·k_min)⌋``, the integer remainder one token each to the highest
       weights (ties: higher score, then earlier segment; the released argsort is unstable), then a clamp to
       ``[k_min, k_max]`` — which can leave budget unused (the ``exact`` mode redistributes it).
    """
    n, k_max, budget = request.num_segments, request.k_max, request.budget
    k_min = request.k_min
    anchors_too_costly = n * k_min > budget
    if anchors_too_costly:
        k_min = max(1, budget // max(n, 1))
    s = None if request.scores is None else to_float32(request.scores)
    if s is None or n == 0 or float(s.max() - s.min()) < RELEASED_TIE_RANGE:
        return request.full(min(k_max, budget // max(n, 1)))
    if anchors_too_costly and budget < n:
        return keep_top(s, budget).to(request.device)
    s_hat = (s - s.min()) / (s.max() - s.min())
    k = k_min + torch.floor((k_max - k_min) * s_hat).long()
    if int(k.sum()) <= budget:
        return k.to(request.device)
    total = s_hat.sum()
    weights = torch.full_like(s_hat, 1.0 / n) if float(total) < RELEASED_ZERO_SUM else s_hat / total
    residual = budget - n * k_min
    extra = torch.floor(weights * residual).long()
    remainder = max(0, min(residual - int(extra.sum()), n))
    by_score = rank_descending(s)  # weight ties (ŝ rounded together) go to the higher score
    by_weight = by_score[torch.argsort(weights[by_score], descending=True, stable=True)]
    extra[by_weight[:remainder]] += 1
    return (k_min + extra).clamp(k_min, k_max).to(request.device)


def water_fill(s_hat: Tensor, cap: int, total: int, order: Tensor | None = None) -> Tensor:
    """Continuous ``x = min(cap, λ·ŝ)`` with ``Σx = total`` (``0 ≤ total ≤ N·cap``), vectorised.

    If even ``λ → ∞`` cannot spend ``total`` (every segment with ŝ > 0 saturated), what is left
    is shared equally by the ŝ = 0 segments, which all hold the minimum score. ``order`` (indices
    sorting ``s_hat`` from high to low) saves a sort when the caller already has it.
    """
    positive = s_hat > 0
    num_positive = int(positive.sum())
    if total >= cap * num_positive:
        leftover = (total - cap * num_positive) / max(s_hat.numel() - num_positive, 1)
        x = torch.full_like(s_hat, leftover)
        x[positive] = float(cap)
        return x
    ordered = s_hat[order] if order is not None else torch.sort(s_hat, descending=True).values
    tail_sums = torch.flip(torch.cumsum(torch.flip(ordered, [0]), 0), [0])  # Σ_{i ≥ j} ordered[i]
    capped = torch.arange(s_hat.numel(), device=s_hat.device, dtype=torch.float64)
    left = total - capped * cap  # tokens still to spend with j segments capped
    # With j segments capped, λ_j = left_j / tail_j is consistent once the (j+1)-th largest no
    # longer exceeds cap. λ·ŝ is computed as left · (ŝ / tail): λ alone overflows for subnormal ŝ.
    consistent = (left * (ordered / tail_sums) <= cap) & (capped < num_positive)
    first = int(torch.argmax(consistent.to(torch.uint8)))  # found: at j = #positive − 1, left < cap
    return torch.clamp(left[first] * (s_hat / tail_sums[first]), max=float(cap))


def round_preserving_sum(x: Tensor, by_score: Tensor, cap: int, total: int) -> Tensor:
    """Integers ``≤ cap`` summing to ``total``: floors, then +1 by largest remainder.

    Ties in the remainder go to the higher score, then the earlier segment, which keeps the
    result monotone in the score (largest-remainder rounding). ``by_score`` lists the segments
    from the highest score to the lowest (ties in time order).
    """
    floors = torch.floor(x)
    counts = floors.long()
    eligible = floors < cap
    missing = min(total - int(counts.sum()), int(eligible.sum()))
    if missing > 0:
        fractions = torch.where(eligible, x - floors, torch.full_like(x, -1.0))
        order = by_score[torch.argsort(fractions[by_score], descending=True, stable=True)]
        counts[order[:missing]] += 1
    return counts


def ata_exact(request: AllocationRequest, eps: float = DEFAULT_EPS) -> Tensor:
    """Budget-exact ATA: spends ``min(B, N·k_max)`` tokens whenever the scores are not all equal.

    Same anchor fallback as the released mode (``k_min → B // N`` when ``N·k_min > B``), then
    ``k = k_min + min(k_max − k_min, λ·ŝ)`` with the largest λ that fits, rounded by largest
    remainder. All-equal scores give ``min(k_max, B // N)`` each, except that when ``B < N`` the
    ``B`` tokens go one each to segments spread evenly over time (nothing would be kept
    otherwise); unequal scores with ``B < N·k_min`` and ``B < N`` keep the ``B`` highest-scoring
    segments with 1 token.
    """
    s, n, k_max, budget = request.scores, request.num_segments, request.k_max, request.budget
    k_min = request.k_min
    if n == 0:
        return request.full(0)
    if s is None or bool((s == s[0]).all()):
        if budget < n:
            return evenly_spaced(n, budget, request.device)
        return request.full(min(k_max, budget // n))
    if n * k_min > budget:
        if budget < n:
            return keep_top(s, budget).to(request.device)
        k_min = budget // n
    cap = k_max - k_min
    total = min(budget - n * k_min, n * cap)
    by_score = rank_descending(s)
    x = water_fill(normalise(s, eps), cap, total, by_score)
    return (k_min + round_preserving_sum(x, by_score, cap, total)).to(request.device)


@ALLOCATORS.register("ata")
class ATAAllocator(Allocator):
    """Adaptive Token Allocation (paper Alg. 1): relevance-proportional tokens with a minimum anchor.

    Args:
        mode: ``"released"`` reproduces the released Tempo code (spends less than the budget when
            Eq. 3 already fits, the paper's "less is more" sparsity); ``"exact"`` spends
            ``min(B, N·k_max)`` by water-filling. See :func:`ata_released` and :func:`ata_exact`.
        eps: ε of the ``exact`` mode's min–max normalisation (1e-6); the ``released`` mode has
            none, as the released code (compatibility §3).

    Called as ``alloc(relevance [S] | None, k_max, budget, k_min=0, num_segments=None)``; the
    model's recipes pass the paper's ``k_min = 4``. ``relevance=None`` behaves as equal scores.
    """

    def __init__(self, mode: str = "released", eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        check_choice(mode, ATA_MODES, "ata: mode")
        if not eps > 0:
            raise ConfigError(
                f"ata: eps={eps} must be > 0 (it keeps ŝ below 1); the default is {DEFAULT_EPS}"
            )
        self.mode = mode
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, eps={self.eps}"

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        request = check_request(relevance, k_max, budget, k_min, num_segments, where=f"ata ({self.mode})")
        return self.allocate(request)

    def allocate(self, request: AllocationRequest) -> Tensor:
        """Counts for an already validated request (used by :class:`PruneAllocator`)."""
        if self.mode == "released":
            return ata_released(request)
        return ata_exact(request, self.eps)
