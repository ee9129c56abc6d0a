"""The Allocator interface: relevance + budget → integer tokens per segment."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


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
