"""What a VLM family tells Tempo's memory-token core (:mod:`tempo_kit.compressors.memory`).

The core does what every family shares: one causal sequence per segment, ``k_max`` learned memory
tokens written after its last real token, their final hidden states read out as the memory, the
state just before them scored through the LM head's "Yes"/"No" rows as the relevance (paper Eq. 2,
Sec. 3.3). A :class:`FamilyAdapter` holds everything that differs between families, and nothing
else: which Hugging Face model to build, how frames become its visual input, the ids of the
sequence (special tokens, chat template, how time is told), position ids (M-RoPE or 1-D), and
whether a question-independent prefix can be cached.

A new family is one subclass of :class:`FamilyAdapter` plus a ``MemoryTokenCompressor`` subclass
that names it, registered under the family's compressor name (``qwen2_5_vl.py`` is the template).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from tempo_kit.compressors.packed import pack_position_ids
from tempo_kit.types import Segments

#: How a family tells the model when a frame was shown.
#: ``"per_patch"``: a text time tag before every temporal patch (Qwen3-VL);
#: ``"positions"``: in the temporal M-RoPE axis (Qwen2.5-VL's absolute time);
#: ``"per_frame"``: a text time stamp before every frame (SmolVLM2);
#: ``"none"``: frames in order, no time (LLaVA-OneVision, InternVL).
TIME_ENCODINGS = ("per_patch", "positions", "per_frame", "none")


class FamilyAdapter(ABC):
    """One VLM family's input conventions, built from a checkpoint folder's config and tokenizer.

    Class attributes declare what the family is and can do; the core reads them at build time so
    that a recipe asking for something the family cannot do fails before any work.
    """

    #: the compressor name it is registered under (``model.compressor.name``)
    name: ClassVar[str]
    #: ``model_type`` values of ``config.json`` this adapter reads
    model_types: ClassVar[tuple[str, ...]]
    #: a hub checkpoint of the family, named in the download hint for a missing folder
    hub_example: ClassVar[str] = "Qwen/Qwen3-VL-2B-Instruct"
    #: how time reaches the model (one of :data:`TIME_ENCODINGS`)
    time_encoding: ClassVar[str] = "none"
    #: whether a question-independent prefix can be cached for follow-up questions
    #: (:mod:`tempo_kit.compressors.prefix_cache`); the core offers the cache only then
    prefix_cache: ClassVar[bool] = False
    #: the frame geometries (``data.preprocessing`` modes) its processor takes, its default first;
    #: the released chain is Qwen3-VL's, so other families take ``"processor"`` (decode-time cap only)
    preprocessing: ClassVar[tuple[str, ...]] = ("processor",)
    #: checkpoint key of the LM head (read once for the relevance direction, then dropped)
    lm_head_key: ClassVar[str] = "lm_head.weight"
    #: where the compressor's modules sit in the checkpoint files (``{"svlm": "model"}``:
    #: ``svlm.x`` ↔ ``model.x``); a family whose files keep an older layout maps its parts
    checkpoint_paths: ClassVar[dict[str, str]] = {"svlm": "model"}
    #: key of the input embeddings in the compressor's own state (``svlm.`` + the HF model's path)
    embeddings_key: ClassVar[str] = "svlm.language_model.embed_tokens.weight"
    #: whether the family's model runs a packed call (:mod:`tempo_kit.compressors.packed`): its
    #: language model reads restarting position ids as separate sequences, and its forward places
    #: visual features by order. Off unless a family opts in (and tests packed == padded), so an
    #: adapter that does not know about packing keeps working and refuses ``pack_segments``.
    packs_segments: ClassVar[bool] = False

    def __init__(self, path: Path, tokenizer: Any, config: Any) -> None:
        self.path = path
        self.tokenizer = tokenizer
        self.config = config

    # ------------------------------------------------------------------ the model
    @staticmethod
    @abstractmethod
    def model_class() -> type:
        """The Hugging Face model without its LM head (``XForConditionalGeneration.model``'s class)."""

    @staticmethod
    @abstractmethod
    def layer_classes() -> tuple[type, ...]:
        """Block classes of the language model and vision tower (FSDP units, activation checkpointing)."""

    def text_config(self) -> Any:
        """The language model's config (hidden size, tied embeddings)."""
        return self.config.get_text_config()

    # ------------------------------------------------------------------ the visual input
    @abstractmethod
    def encode_visual(self, segments: Sequence[Segments], items: Sequence[tuple[int, int]], device) -> list:
        """Per ``(sample, segment)`` of ``items``, what the family's model sees of it (pixels and
        whatever its sequence needs: grid, times, tile counts)."""

    @abstractmethod
    def visual_inputs(self, visuals: Sequence, device) -> dict[str, Tensor]:
        """The pixel (and grid) arguments of one forward over a micro-batch of :meth:`encode_visual` items."""

    # ------------------------------------------------------------------ the sequence
    def sequence_ids(self, visual, prompt: str, query: str) -> list[int]:
        """Ids of one segment's whole sequence (the memory tokens follow it); by default
        :meth:`prefix_ids` + :meth:`suffix_ids`. A family whose visual block and question meet in
        one run of text (so the two halves would tokenise differently) overrides this instead."""
        return self.prefix_ids(visual, prompt) + self.suffix_ids(query)

    def sequence_lengths(self, segments: Segments, prompt: str, query: str) -> list[int]:
        """Length of each segment's :meth:`sequence_ids`, from frame sizes and times alone (no pixels)."""
        suffix = len(self.suffix_ids(query))
        return [n + suffix for n in self.prefix_lengths(segments, prompt)]

    def prefix_ids(self, visual, prompt: str) -> list[int]:
        """Question-independent head of a segment's sequence: system turn, user turn up to the
        end of the visual block. It must end where :meth:`suffix_ids` can start without changing
        how the whole text tokenises (a special token), which is what makes it cacheable."""
        raise NotImplementedError(f"family {self.name!r} builds whole sequences (sequence_ids)")

    def suffix_ids(self, query: str) -> list[int]:
        """The question and the generation prompt."""
        raise NotImplementedError(f"family {self.name!r} builds whole sequences (sequence_ids)")

    def prefix_lengths(self, segments: Segments, prompt: str) -> list[int]:
        """Length of each segment's :meth:`prefix_ids`, from frame sizes alone (no pixels)."""
        raise NotImplementedError(f"family {self.name!r} builds whole sequences (sequence_ids)")

    def describe(self, segments: Segments) -> list[dict[str, object]]:
        """What the model sees of each segment (shown by ``tempo-kit infer --explain``)."""
        return [{"frames": segments.frame_count(j)} for j in range(len(segments))]

    # ------------------------------------------------------------------ positions
    def positions(self, model, input_ids: Tensor, attention_mask: Tensor, visual: dict[str, Tensor]) -> Tensor:
        """Position ids of a padded batch; by default 1-D, counting real tokens only, so padding
        on either side leaves every real token's position unchanged."""
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def packed_positions(self, position_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Position ids of a packed call from those :meth:`positions` gave its padded batch: by
        default each segment's own, gathered, with a restarting text row in front of M-RoPE ones."""
        return pack_position_ids(position_ids, attention_mask)

    def continued_positions(self, start: Tensor, width: int) -> Tensor:
        """Positions of a suffix of ``width`` tokens after cached prefixes ending at ``start - 1``."""
        return start[:, None] + torch.arange(width, device=start.device)[None, :]

    def next_position(self, position_ids: Tensor, row: int, length: int) -> int:
        """The position of the first token after row ``row``'s prefix of ``length`` tokens: its last
        (text) token's plus one, whatever rule placed the visual block before it (Qwen2.5-VL's
        temporal axis can run past the spatial ones, so the largest position is not that)."""
        return int(position_ids[..., row, length - 1].max()) + 1
