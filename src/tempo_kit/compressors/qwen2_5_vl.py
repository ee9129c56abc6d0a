"""Tempo's compressor on Qwen2.5-VL: window-attention ViT, M-RoPE with absolute time.

What differs from Qwen3-VL (:mod:`tempo_kit.compressors.qwen3_vl`, whose adapter this extends):

- time is told by positions, not text: the temporal M-RoPE axis of a video advances
  ``tokens_per_second × seconds_per_patch`` per temporal patch (``second_per_grid_ts``), so a
  video is ONE untagged ``<|vision_start|><|video_pad|>…<|vision_end|>`` block;
- the video processor bounds each frame's pixels (Qwen2-VL's rule), not the whole clip's;
- patch 14 and CLIP's mean/std, read from the checkpoint's processor configs;
- no DeepStack; the vision tower's window attention runs inside the model's own forward;
- the checkpoint files keep Qwen2-VL's key layout (``model.*``, ``visual.*``).

The prefix still ends on ``<|vision_end|>`` and text after it continues at ``max(position) + 1``,
so it is cached for follow-up questions like Qwen3-VL's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.compressors.checkpoint import patch_configs
from tempo_kit.compressors.memory_prefix import PrefixCachedMemoryCompressor
from tempo_kit.compressors.qwen3_vl import Qwen3VLFamily, grid_visual_inputs
from tempo_kit.compressors.sequence import SequenceBuilder, check_placeholder
from tempo_kit.compressors.visual import SegmentPatches
from tempo_kit.registry import COMPRESSORS


class Qwen25VLFamily(Qwen3VLFamily):
    """Qwen2.5-VL's input: one untagged block per video, absolute-time M-RoPE.

    Args:
        path: the checkpoint folder.
        tokenizer: its tokenizer.
        config: its Hugging Face config.
        min_pixels: lower per-frame video pixel bound; default from ``video_preprocessor_config.json``.
        max_pixels: upper per-frame video pixel bound, same default source.
        image_min_pixels: lower image pixel bound; default from ``preprocessor_config.json``.
        image_max_pixels: upper image pixel bound, same default source.
    """

    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    hub_example = "Qwen/Qwen2.5-VL-3B-Instruct"
    time_encoding = "positions"
    preprocessing = ("processor",)  # its processor's per-frame bounds, not Qwen3-VL's released chain
    prefix_cache = True
    video_rule = "image"  # Qwen2-VL's video processor bounds each frame, as its image processor does
    # the released files keep Qwen2-VL's layout: ``model.*`` is the language model, ``visual.*`` the tower
    checkpoint_paths = {"svlm.language_model": "model", "svlm.visual": "visual"}

    def __init__(
        self,
        path: Path,
        tokenizer: Any,
        config: Any,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
    ) -> None:
        self.path, self.tokenizer, self.config = path, tokenizer, config
        self.video_config, self.image_config = patch_configs(
            path, min_pixels=min_pixels, max_pixels=max_pixels,
            image_min_pixels=image_min_pixels, image_max_pixels=image_max_pixels,
        )  # fmt: skip
        self.sequences = SequenceBuilder(tokenizer, tagged=False)
        check_placeholder(self.sequences.ids, "<|video_pad|>", config.video_token_id, path)

    @staticmethod
    def model_class() -> type:
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

        return Qwen2_5_VLModel

    @staticmethod
    def layer_classes() -> tuple[type, ...]:
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
            Qwen2_5_VLDecoderLayer,
            Qwen2_5_VLVisionBlock,
        )

        return (Qwen2_5_VLDecoderLayer, Qwen2_5_VLVisionBlock)

    def visual_inputs(self, visuals: Sequence[SegmentPatches], device) -> dict[str, Tensor]:
        visual = grid_visual_inputs(visuals, device)
        seconds = [p.seconds_per_patch for p in visuals if p.slot == "video"]
        if seconds:
            visual["second_per_grid_ts"] = torch.tensor(seconds, dtype=torch.float32, device=device)
        return visual


@COMPRESSORS.register("qwen2_5_vl")
class Qwen25VLCompressor(PrefixCachedMemoryCompressor):
    """Tempo's compressor on a Hugging Face Qwen2.5-VL checkpoint (e.g. Qwen2.5-VL-3B-Instruct).

    Settings: the memory-token core's (:class:`~tempo_kit.compressors.memory.MemoryTokenCompressor`)
    plus the family's pixel bounds (:class:`Qwen25VLFamily`).
    """

    family = Qwen25VLFamily
