"""The Compressor interface: segments + query (+ system prompt) → memory tokens (+ relevance)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from torch import nn

from tempo_kit.errors import ConfigError
from tempo_kit.types import CompressorOutput, Segments

#: Segments per compressor call when a compressor does not choose (Tempo's SVLM: 8).
DEFAULT_SEGMENT_BATCH_SIZE = 8


class Compressor(nn.Module, ABC):
    """Turns each segment of each sample into ``k_max`` memory tokens of width ``hidden_size``.

    A query-aware compressor (Tempo's SVLM) also scores each segment's relevance to its sample's
    query in the same forward pass; a query-agnostic one returns ``relevance=None``.
    Implementations register with ``@COMPRESSORS.register("name")``.

    The kit never gives ``forward`` more than ``segment_batch_size`` segments at once, nor, when
    ``call_token_budget`` is set, more than that many tokens (as :meth:`call_tokens` counts them):
    longer inputs are cut into calls by :func:`~tempo_kit.model.compression.compress_samples` (the
    one place that chunks), so a compressor handles its input in one pass. Segments are compressed
    independently, so the cut changes memory use and speed, never results.

    A segment's token count varies with its frame size, frame count and (for an SVLM) its query,
    so a budget in tokens bounds a call's activation memory where a segment count cannot: eight
    segments of a 4:3 video cost more than eight of a 16:9 one.
    """

    #: width d_c of every memory token
    hidden_size: int
    #: memory tokens produced per segment
    k_max: int
    #: most segments one ``forward`` call is given
    segment_batch_size: int = DEFAULT_SEGMENT_BATCH_SIZE
    #: most tokens one ``forward`` call is given (:meth:`call_tokens` of its segments' counts);
    #: ``None``: no token budget, calls are cut by ``segment_batch_size`` alone. Setting it needs
    #: :meth:`segment_tokens`.
    call_token_budget: int | None = None
    #: whether ``forward`` takes a ``system_prompt`` (an instruction-following SVLM does; a
    #: vision-only compressor does not, and the kit refuses a prompt for it with a clear error)
    takes_system_prompt: bool = False
    #: whether ``forward`` returns a relevance per segment (a query-aware compressor) or ``None``
    scores_relevance: bool = False

    @abstractmethod
    def forward(
        self, segments: Sequence[Segments], queries: Sequence[str], system_prompt: str | None = None
    ) -> CompressorOutput:
        """Compress every segment of every sample; ``queries[i]`` belongs to ``segments[i]``.

        ``system_prompt`` is the instruction to compress under: a name the compressor knows
        (Tempo's ``"standard"`` or ``"routing"``) or literal text; ``None`` keeps the
        compressor's own choice for its mode (training or inference).
        """

    def segment_tokens(self, segments: Segments, query: str, system_prompt: str | None = None) -> list[int]:
        """Tokens the network runs over for each segment of one sample, counted without pixels.

        Only needed with a ``call_token_budget``; a compressor that can count overrides this.
        """
        raise ConfigError(
            f"compressor {type(self).__name__} cannot count its tokens per segment (it has no "
            "segment_tokens), so it cannot take a call_token_budget; set call_token_budget to null"
        )

    def call_tokens(self, counts: Sequence[int]) -> int:
        """Cost in tokens of one call over segments of ``counts`` tokens each.

        By default the call is one padded batch, as a language model runs it: every row is as long
        as the longest, so it costs ``len(counts) × max(counts)``. A compressor that packs its
        segments without padding (a vision tower over concatenated patches) returns ``sum(counts)``.
        """
        return padded_tokens(counts)


def padded_tokens(counts: Sequence[int]) -> int:
    """Tokens of one padded batch of sequences of ``counts`` tokens: ``len(counts) × max(counts)``."""
    return len(counts) * max(counts, default=0)
