"""Tempo's compressor on LLaVA-OneVision: SigLIP + 2-layer MLP projector + a Qwen2 LM, 1-D positions.

What the adapter does, as ``LlavaOnevisionProcessor`` does for a video:

- every frame is resized to the vision tower's square (the video processor's ``size``), rescaled
  and normalised; the model's own video path runs SigLIP per frame, projects, pools each frame's
  ``g × g`` feature grid bilinearly to ``ceil(g/2)²`` tokens, and appends one ``image_newline``;
  so a segment of ``F`` frames is ``F·ceil(g/2)² + 1`` ``<video>`` tokens (``replace_video_token``);
- time is not told (``time_encoding = "none"``): the released model sees frames in order, and its
  processor writes no time text; Tempo's segments keep their times for the decoder side only;
- the turn is the released chat template: ``<|im_start|>user\\n<video>…\\n{text}<|im_end|>\\n``;
- positions are 1-D (the core's default).

The video block ends on a ``<video>`` token (special), so the question-independent prefix is
cached for follow-up questions. Images (and a text sample's blank image) take the video path as
one-frame videos, not the anyres image tiling: one pooled form for every segment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, partial
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

SPECIALS = ("<|im_start|>", "<|im_end|>", "<video>")
#: ``LlavaOnevisionVideoProcessor``'s mean and std (CLIP's), used where the checkpoint's processor file is silent.
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class LlavaOnevisionFamily(FamilyAdapter):
    """LLaVA-OneVision's video input: square frames, 2 × 2-pooled features + one newline, no time."""

    name = "llava_onevision"
    model_types = ("llava_onevision",)
    hub_example = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
    time_encoding = "none"
    prefix_cache = True
    # the files keep LLaVA's layout: ``language_model.model.*`` + ``language_model.lm_head``, the rest at the root
    lm_head_key = "language_model.lm_head.weight"
    checkpoint_paths = {"svlm.language_model": "language_model.model", "svlm": ""}

    def __init__(self, path: Path, tokenizer: Any, config: Any) -> None:
        super().__init__(path, tokenizer, config)
        if config.vision_feature_select_strategy != "full":
            raise ConfigError(
                f"{str(path)!r} sets vision_feature_select_strategy={config.vision_feature_select_strategy!r}; "
                "compressor 'llava_onevision' reads LLaVA-OneVision's 'full' (SigLIP has no class token)"
            )
        processor = read_json_if_present(path / "video_preprocessor_config.json")
        vision = config.vision_config
        size = processor.get("size", {})
        size = (int(size.get("height", vision.image_size)), int(size.get("width", vision.image_size)))
        self.pixels = PixelNormaliser.from_processor(processor, size, CLIP_MEAN, CLIP_STD)
        self.tokens_per_frame = math.ceil(vision.image_size // vision.patch_size / 2) ** 2
        self.ids = special_token_ids(tokenizer, SPECIALS, "LLaVA-OneVision", path)
        check_placeholder(self.ids, "<video>", config.video_token_id, path)
        self._encode = partial(text_ids, tokenizer)

    @staticmethod
    def model_class() -> type:
        return _video_list_model()

    @staticmethod
    def layer_classes() -> tuple[type, ...]:
        from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer
        from transformers.models.siglip.modeling_siglip import SiglipEncoderLayer

        return (Qwen2DecoderLayer, SiglipEncoderLayer)

    def encode_visual(self, segments: Sequence[Segments], items, device) -> list[SquareFrames]:
        return [
            SquareFrames(slot_of(segments[i], i), segments[i].frame_count(j), self.pixels(segments[i], j, device))
            for i, j in items
        ]

    def visual_inputs(self, visuals: Sequence[SquareFrames], device) -> dict[str, Any]:
        """``pixel_values_videos`` as one ``[F, 3, S, S]`` tensor per row: rows may differ in frames."""
        return {"pixel_values_videos": [v.pixels.to(device) for v in visuals]}

    def prefix_ids(self, visual: SquareFrames, prompt: str) -> list[int]:
        parts = ["<|im_start|>", "system\n" + prompt, "<|im_end|>", "\n", "<|im_start|>", "user\n"]
        return assemble(parts + [(self.ids["<video>"], self.video_tokens(visual.count))], self.ids, self._encode)

    def suffix_ids(self, query: str) -> list[int]:
        """The template's ``\\n`` after the media, the question, the generation prompt."""
        parts = ["\n" + QUERY_PREFIX + query, "<|im_end|>", "\n", "<|im_start|>", "assistant\n"]
        return assemble(parts, self.ids, self._encode)

    def prefix_lengths(self, segments: Segments, prompt: str) -> list[int]:
        head = len(self.prefix_ids(SquareFrames("video", 0), prompt))
        return [head + self.tokens_per_frame * segments.frame_count(j) for j in range(len(segments))]

    def video_tokens(self, frames: int) -> int:
        """``<video>`` tokens of ``frames`` frames: pooled features of each, then one newline."""
        return frames * self.tokens_per_frame + 1

    def describe(self, segments: Segments) -> list[dict[str, object]]:
        return [{"frames": (n := segments.frame_count(j)), "visual_tokens": self.video_tokens(n)}
                for j in range(len(segments))]  # fmt: skip


@cache
def _video_list_model() -> type:
    """``LlavaOnevisionModel`` whose video path also takes a list of ``[F_i, 3, S, S]`` videos.

    The Hugging Face model stacks a batch of videos into one ``[B, F, …]`` tensor, so every row
    must hold as many frames; Tempo's segments do not (a video's last one is shorter). Videos of
    equal length go through the model's own ``get_video_features`` together; the features are
    concatenated in row order, which is the order its forward scatters them into ``<video>``
    slots. Weights, module names and everything else are the Hugging Face model's.
    """
    from transformers.models.llava_onevision.modeling_llava_onevision import LlavaOnevisionModel

    class LlavaOnevisionVideoListModel(LlavaOnevisionModel):
        def get_video_features(self, pixel_values_videos, **kwargs):
            if not isinstance(pixel_values_videos, (list, tuple)):
                return super().get_video_features(pixel_values_videos, **kwargs)
            features: list[Tensor | None] = [None] * len(pixel_values_videos)
            for count in sorted({len(v) for v in pixel_values_videos}):
                rows = [r for r, v in enumerate(pixel_values_videos) if len(v) == count]
                out = super().get_video_features(torch.stack([pixel_values_videos[r] for r in rows]), **kwargs)
                for k, r in enumerate(rows):
                    features[r] = out.pooler_output[k]
            out.pooler_output = torch.cat(features)[None]
            return out

    return LlavaOnevisionVideoListModel


@COMPRESSORS.register("llava_onevision")
class LlavaOnevisionCompressor(PrefixCachedMemoryCompressor):
    """Tempo's compressor on a Hugging Face LLaVA-OneVision checkpoint (e.g. llava-onevision-qwen2-0.5b-ov-hf).

    Settings: the memory-token core's (:class:`~tempo_kit.compressors.memory.MemoryTokenCompressor`).
    """

    family = LlavaOnevisionFamily
