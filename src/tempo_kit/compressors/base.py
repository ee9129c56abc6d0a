"""The Compressor interface: segments + query → memory tokens (+ relevance)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from torch import nn

from tempo_kit.types import CompressorOutput, Segments


class Compressor(nn.Module, ABC):
    """Turns each segment of each sample into ``k_max`` memory tokens of width ``hidden_size``.

    A query-aware compressor (Tempo's SVLM) also scores each segment's relevance to its sample's
    query in the same forward pass; a query-agnostic one returns ``relevance=None``.
    Implementations register with ``@COMPRESSORS.register("name")``.
    """

    #: width d_c of every memory token
    hidden_size: int
    #: memory tokens produced per segment
    k_max: int

    @abstractmethod
    def forward(self, segments: Sequence[Segments], queries: Sequence[str]) -> CompressorOutput:
        """Compress every segment of every sample; ``queries[i]`` belongs to ``segments[i]``."""
