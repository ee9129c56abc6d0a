"""The Allocator interface: relevance + budget → integer tokens per segment."""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tempo_kit.errors import ConfigError


class Allocator(nn.Module, ABC):
    """Decides how many of its ``k_max`` memory tokens each segment keeps under a budget.

    Contract for every implementation: returns a long tensor ``[S]`` with ``0 ≤ k ≤ k_max`` and
    ``Σk ≤ budget``. A segment given 0 is dropped with its time tag. Holds no parameters, so it
    can be swapped at inference without touching weights. Register with
    ``@ALLOCATORS.register("name")``.
    """

    @abstractmethod
    def forward(
        self,
        relevance: Tensor | None,
        k_max: int,
        budget: int,
        k_min: int = 0,
        *,
        num_segments: int | None = None,
    ) -> Tensor:
        """Integer counts ``[S]`` for scores ``relevance`` ``[S]``.

        ``relevance`` is ``None`` for a query-agnostic compressor; ``num_segments`` then gives S.
        """


@dataclass(frozen=True)
class AllocationRequest:
    """Validated allocator arguments.

    Attributes:
        scores: float64 ``[S]`` detached copy of the relevance, or ``None`` (query-agnostic).
        num_segments: S.
        k_max, budget, k_min: the integer arguments, checked.
        device: where the counts go (the relevance's device, CPU when there is none).
    """

    scores: Tensor | None
    num_segments: int
    k_max: int
    budget: int
    k_min: int
    device: torch.device

    def full(self, value: int) -> Tensor:
        """Counts ``[S]`` all equal to ``value``."""
        return torch.full((self.num_segments,), value, dtype=torch.long, device=self.device)


def _as_int(name: str, value: object, where: str) -> int:
    try:
        return operator.index(value)  # accepts int and 0-d integer tensors, rejects floats
    except TypeError:
        raise ConfigError(f"{where}: {name} must be an integer, got {value!r}; pass e.g. {name}=4") from None


def check_request(
    relevance: Tensor | None,
    k_max: object,
    budget: object,
    k_min: object,
    num_segments: int | None,
    *,
    where: str = "allocator",
) -> AllocationRequest:
    """Validate the arguments every allocator takes and return them in one record.

    Raises:
        ConfigError: naming the bad value and the fix (bounds, NaN/inf scores, shape, missing S).
    """
    k_max = _as_int("k_max", k_max, where)
    budget = _as_int("budget", budget, where)
    k_min = _as_int("k_min", k_min, where)
    if k_max < 1:
        raise ConfigError(f"{where}: k_max={k_max} must be at least 1 (the compressor's tokens per segment)")
    if k_min < 0:
        raise ConfigError(f"{where}: k_min={k_min} must be ≥ 0; use 0 to allow dropping segments")
    if k_min > k_max:
        raise ConfigError(
            f"{where}: k_min={k_min} exceeds k_max={k_max}; set k_min ≤ k_max (the paper uses 4)"
        )
    if budget < 0:
        raise ConfigError(f"{where}: budget={budget} must be ≥ 0 visual tokens (the paper uses 4096 or 8192)")
    if relevance is None:
        if num_segments is None:
            raise ConfigError(
                f"{where}: relevance is None, so num_segments is needed to know how many segments to "
                "allocate; pass num_segments=S"
            )
        n = _as_int("num_segments", num_segments, where)
        if n < 0:
            raise ConfigError(f"{where}: num_segments={n} must be ≥ 0")
        return AllocationRequest(None, n, k_max, budget, k_min, torch.device("cpu"))
    if not isinstance(relevance, Tensor):
        relevance = torch.as_tensor(relevance)
    if relevance.dim() != 1:
        raise ConfigError(
            f"{where}: relevance must be 1-D [S] (one score per segment of one video), got shape "
            f"{tuple(relevance.shape)}; allocate each video separately"
        )
    if num_segments is not None and _as_int("num_segments", num_segments, where) != relevance.numel():
        raise ConfigError(
            f"{where}: num_segments={num_segments} disagrees with relevance of length {relevance.numel()}; "
            "drop num_segments or fix it"
        )
    scores = relevance.detach().to(torch.float64)
    bad = ~torch.isfinite(scores)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ConfigError(
            f"{where}: relevance[{index}] = {scores[index].item()} is not a finite number; "
            "check the compressor's scores (NaN usually means a bf16 overflow)"
        )
    return AllocationRequest(scores, scores.numel(), k_max, budget, k_min, relevance.device)


def rank_descending(scores: Tensor) -> Tensor:
    """Indices from the highest score to the lowest; equal scores keep their time order."""
    return torch.argsort(scores, descending=True, stable=True)


def mask_of(indices: Tensor, size: int) -> Tensor:
    """Boolean mask ``[size]`` that is True at ``indices``."""
    mask = torch.zeros(size, dtype=torch.bool, device=indices.device)
    mask[indices] = True
    return mask
