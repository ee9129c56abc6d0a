"""The Compressor interface: segments + query (+ system prompt) → memory tokens (+ relevance)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from torch import nn

from tempo_kit.types import CompressorOutput, Segments

#: Segments per compressor call when a compressor does not choose (Tempo's SVLM: 8).
DEFAULT_SEGMENT_BATCH_SIZE = 8


class Compressor(nn.Module, ABC):
    """Turns each segment of each sample into ``k_max`` memory tokens of width ``hidden_size``.

    A query-aware compressor (Tempo's SVLM) also scores each segment's relevance to its sample's
    query in the same forward pass; a query-agnostic one returns ``relevance=None``.
    Implementations register with ``@COMPRESSORS.register("name")``.

    The kit never gives ``forward`` more than ``segment_batch_size`` segments at once: longer
    inputs are cut into calls of that size by :func:`~tempo_kit.model.compression.compress_samples`
    (the one place that chunks), so a compressor handles its input in one pass. Segments are
    compressed independently, so the size changes memory use and speed, never results.
    """

    #: width d_c of every memory token
    hidden_size: int
    #: memory tokens produced per segment
    k_max: int
    #: most segments one ``forward`` call is given
    segment_batch_size: int = DEFAULT_SEGMENT_BATCH_SIZE
    #: whether ``forward`` takes a ``system_prompt`` (an instruction-following SVLM does; a
    #: vision-only compressor does not, and the kit refuses a prompt for it with a clear error)
    takes_system_prompt: bool = False

    @abstractmethod
    def forward(
        self, segments: Sequence[Segments], queries: Sequence[str], system_prompt: str | None = None
    ) -> CompressorOutput:
        """Compress every segment of every sample; ``queries[i]`` belongs to ``segments[i]``.

        ``system_prompt`` is the instruction to compress under: a name the compressor knows
        (Tempo's ``"standard"`` or ``"routing"``) or literal text; ``None`` keeps the
        compressor's own choice for its mode (training or inference).
        """
