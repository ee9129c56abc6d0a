"""Tempo's compressor on InternVL 3 (transformers' native ``InternVLForConditionalGeneration``):
InternViT + pixel shuffle + MLP projector + a Qwen2.5 language model, 1-D positions.

What the adapter does, as ``InternVLProcessor`` does for a video:

- every frame is resized to the vision tower's square (the video processor's ``size``), rescaled
  and normalised (ImageNet mean/std), and becomes one ``<img><IMG_CONTEXT>×n</img>`` tile;
  ``n`` = ``image_seq_length`` (patches per tile × ``downsample_ratio``²);
- a video is InternVL's own video prompt, ``"Frame1: <img>…</img>\\nFrame2: <img>…</img>"``: the
  segment's frames numbered from 1, which tells their order and not their time (time reaches the
  global LLM through the decoder's segment time tags), so ``time_encoding = "none"``;
- the turn is InternVL3-hf's ChatML template (``<video>\\n`` / ``<image>\\n`` before the text);
- positions are 1-D (the core's default).

The visual block ends on the special token ``</img>``, so the text after it tokenises on its own:
the prefix up to there is cached for follow-up questions (a session's follow-up equals a fresh
question). An image takes the single-tile form (``crop_to_patches=False``): the image processor's
tiling into up to 12 crops plus a thumbnail is not used, a frame goes straight to the square.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.compressors.family import FamilyAdapter
from tempo_kit.compressors.memory_prefix import PrefixCachedMemoryCompressor
from tempo_kit.compressors.prompts import QUERY_PREFIX
from tempo_kit.compressors.sequence import assemble, check_placeholder, special_token_ids, text_ids
from tempo_kit.compressors.square_frames import PixelNormaliser, SquareFrames
from tempo_kit.compressors.visual import slot_of
from tempo_kit.errors import ConfigError
from tempo_kit.hf_folder import read_json_if_present
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

SPECIALS = ("<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>")
#: InternVL's video prompt, one line per frame (transformers' ``InternVLProcessor.replace_video_token``).
FRAME_LABEL = "Frame{index}: "
#: InternVL3-hf's defaults where a checkpoint's processor files do not say (ImageNet mean/std).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class InternVLFamily(FamilyAdapter):
    """InternVL 3's input: one square tile per frame, frames numbered in text, 1-D positions."""

    name = "internvl"
    model_types = ("internvl",)
    hub_example = "OpenGVLab/InternVL3-1B-hf"
    time_encoding = "none"
    prefix_cache = True
    # the released files keep the older llava layout (``language_model.model.*``, ``vision_tower.*``)
    checkpoint_paths = {"svlm.language_model": "language_model.model", "svlm.vision_tower": "vision_tower",
                        "svlm.multi_modal_projector": "multi_modal_projector"}  # fmt: skip
    lm_head_key = "language_model.lm_head.weight"

    def __init__(self, path: Path, tokenizer: Any, config: Any) -> None:
        super().__init__(path, tokenizer, config)
        processor = read_json_if_present(path / "video_preprocessor_config.json") or read_json_if_present(
            path / "preprocessor_config.json"
        )
        vision = config.vision_config
        size = processor.get("size", {})
        size = (int(size.get("height", vision.image_size[0])), int(size.get("width", vision.image_size[1])))
        if size != tuple(vision.image_size):
            raise ConfigError(
                f"{path / 'video_preprocessor_config.json'} resizes frames to {list(size)} but the vision "
                f"tower of {str(path)!r} takes {list(vision.image_size)}; set its size to the tower's"
            )
        self.pixels = PixelNormaliser.from_processor(processor, size, IMAGENET_MEAN, IMAGENET_STD)
        patches = (size[0] // vision.patch_size[0]) * (size[1] // vision.patch_size[1])
        self.tokens_per_tile = int(patches * config.downsample_ratio**2)
        self.ids = special_token_ids(tokenizer, SPECIALS, "InternVL", path)
        check_placeholder(self.ids, "<IMG_CONTEXT>", config.image_token_id, path)
        self._encode = partial(text_ids, tokenizer)

    @staticmethod
    def model_class() -> type:
        from transformers.models.internvl.modeling_internvl import InternVLModel

        return InternVLModel

    @staticmethod
    def layer_classes() -> tuple[type, ...]:
        """InternViT's blocks and the language model's: Qwen2.5 in every InternVL3 but the 9B (Llama layout)."""
        from transformers.models.internvl.modeling_internvl import InternVLVisionLayer
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer
        from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

        return (Qwen2DecoderLayer, LlamaDecoderLayer, InternVLVisionLayer)

    def encode_visual(self, segments: Sequence[Segments], items, device) -> list[SquareFrames]:
        """One square tile per frame: ``SquareFrames.count`` tiles."""
        return [
            SquareFrames(slot_of(segments[i], i), segments[i].frame_count(j), self.pixels(segments[i], j, device))
            for i, j in items
        ]

    def visual_inputs(self, visuals: Sequence[SquareFrames], device) -> dict[str, Tensor]:
        """``pixel_values`` ``[all tiles, 3, S, S]`` in row order: the model fills the
        ``<IMG_CONTEXT>`` slots of the whole batch in that order."""
        return {"pixel_values": torch.cat([v.pixels for v in visuals]).to(device)}

    def prefix_ids(self, visual: SquareFrames, prompt: str) -> list[int]:
        tile = ["<img>", (self.ids["<IMG_CONTEXT>"], self.tokens_per_tile), "</img>"]
        parts: list = ["<|im_start|>", "system\n" + prompt, "<|im_end|>", "\n", "<|im_start|>", "user\n"]
        if visual.slot == "video":
            for i in range(visual.count):
                parts += ["\n" if i else "", FRAME_LABEL.format(index=i + 1), *tile]
        else:
            parts += tile
        return assemble(parts, self.ids, self._encode)

    def suffix_ids(self, query: str) -> list[int]:
        """``"\\n"`` (the template's, after the visual) + the question + the generation prompt."""
        return assemble(["\n" + QUERY_PREFIX + query, "<|im_end|>", "\n", "<|im_start|>", "assistant\n"], self.ids,
                        self._encode)  # fmt: skip

    def prefix_lengths(self, segments: Segments, prompt: str) -> list[int]:
        slot = slot_of(segments, 0)
        return [len(self.prefix_ids(SquareFrames(slot, segments.frame_count(j)), prompt)) for j in range(len(segments))]


@COMPRESSORS.register("internvl")
class InternVLCompressor(PrefixCachedMemoryCompressor):
    """Tempo's compressor on a Hugging Face InternVL 3 checkpoint (e.g. InternVL3-1B-hf).

    Settings: the memory-token core's (:class:`~tempo_kit.compressors.memory.MemoryTokenCompressor`).
    """

    family = InternVLFamily
