"""Tempo's compressor on Qwen3-VL: the family adapter of the memory-token core.

The sequence is Qwen3-VL's chat format with a text time tag before every temporal patch
(:mod:`tempo_kit.compressors.sequence`); positions are Qwen3-VL's own M-RoPE from its
``get_rope_index`` (memory tokens count as text); the model's own forward runs the vision tower,
scatters the visual features onto the ``<|video_pad|>``/``<|image_pad|>`` positions and adds the
DeepStack features in its first layers. The question-independent prefix ends on
``<|vision_end|>``, so it is cached for follow-up questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE
from tempo_kit.compressors.checkpoint import QWEN3_VL_MODEL_TYPE, patch_configs
from tempo_kit.compressors.family import FamilyAdapter
from tempo_kit.compressors.inputs import K_MAX
from tempo_kit.compressors.memory import (  # noqa: F401  (the names this module always offered)
    NO_TOKEN,
    YES_TOKEN,
    initial_memory_tokens,
    relevance_direction,
    resolve_prompt,
)
from tempo_kit.compressors.memory_prefix import PrefixCachedMemoryCompressor
from tempo_kit.compressors.sequence import SequenceBuilder, check_placeholder
from tempo_kit.compressors.visual import SegmentPatches, describe_segments, patch_segments, segment_grids
from tempo_kit.hub import SVLM_HUB_NAME
from tempo_kit.registry import COMPRESSORS
from tempo_kit.time_tags import TIME_TAG_TEMPLATE
from tempo_kit.types import Segments

#: Checkpoint keys of the SVLM's LM head and input embeddings (Qwen3VLForConditionalGeneration).
LM_HEAD_KEY = "lm_head.weight"
EMBEDDINGS_KEY = "svlm.language_model.embed_tokens.weight"


class Qwen3VLFamily(FamilyAdapter):
    """Qwen3-VL's input: patchified frames, per-patch time tags, M-RoPE, DeepStack (in the model).

    Args:
        path: the checkpoint folder.
        tokenizer: its tokenizer.
        config: its Hugging Face config.
        min_pixels: lower video pixel bound (whole segment); default from the checkpoint's
            ``video_preprocessor_config.json``.
        max_pixels: upper video pixel bound (whole segment), same default source.
        image_min_pixels: lower image pixel bound; default from ``preprocessor_config.json``.
        image_max_pixels: upper image pixel bound, same default source.
        time_tag_template: Qwen3-VL's per-temporal-patch time tag.
    """

    name = "qwen3_vl"
    model_types = (QWEN3_VL_MODEL_TYPE,)
    hub_example = SVLM_HUB_NAME
    time_encoding = "per_patch"
    preprocessing = ("released", "qwen3_vl", "processor")  # the released chain is its own
    prefix_cache = True
    packs_segments = True
    #: resize rule of video segments (:func:`~tempo_kit.compressors.visual.patch_segments`)
    video_rule = "video"

    def __init__(
        self,
        path: Path,
        tokenizer: Any,
        config: Any,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
        time_tag_template: str = TIME_TAG_TEMPLATE,
    ) -> None:
        super().__init__(path, tokenizer, config)
        self.video_config, self.image_config = patch_configs(
            path,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            image_min_pixels=image_min_pixels,
            image_max_pixels=image_max_pixels,
        )
        self.sequences = SequenceBuilder(tokenizer, time_tag_template)
        check_placeholder(self.sequences.ids, "<|video_pad|>", config.video_token_id, path)

    @staticmethod
    def model_class() -> type:
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel

        return Qwen3VLModel

    @staticmethod
    def layer_classes() -> tuple[type, ...]:
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextDecoderLayer, Qwen3VLVisionBlock

        return (Qwen3VLTextDecoderLayer, Qwen3VLVisionBlock)

    def encode_visual(self, segments: Sequence[Segments], items, device) -> list[SegmentPatches]:
        return patch_segments(segments, items, self.video_config, self.image_config, device, self.video_rule)

    def visual_inputs(self, visuals: Sequence[SegmentPatches], device) -> dict[str, Tensor]:
        return grid_visual_inputs(visuals, device)

    def prefix_ids(self, visual: SegmentPatches, prompt: str) -> list[int]:
        return self.sequences.prefix(
            prompt, slot=visual.slot, tokens_per_patch=visual.tokens_per_patch, patch_times=visual.times
        )

    def suffix_ids(self, query: str) -> list[int]:
        return self.sequences.suffix(query)

    def prefix_lengths(self, segments: Segments, prompt: str) -> list[int]:
        return [
            len(self.sequences.prefix(prompt, slot=g.slot, tokens_per_patch=g.tokens_per_patch, patch_times=g.times))
            for g in segment_grids(segments, self.video_config, self.image_config, video_rule=self.video_rule)
        ]

    def describe(self, segments: Segments) -> list[dict[str, object]]:
        """Per segment, the patch grid and per-patch time tags this compressor feeds its SVLM."""
        return describe_segments(segments, self.video_config, self.image_config, video_rule=self.video_rule)

    def positions(self, model, input_ids: Tensor, attention_mask: Tensor, visual: dict[str, Tensor]) -> Tensor:
        """Qwen3-VL's own M-RoPE positions ``[3, B, L]`` (memory tokens count as text)."""
        return mrope_positions(model, self.sequences, input_ids, attention_mask, visual)

    def continued_positions(self, start: Tensor, width: int) -> Tensor:
        """Text after a visual block continues at ``max(position) + 1`` on all three M-RoPE axes."""
        return super().continued_positions(start, width).unsqueeze(0).expand(3, -1, -1)


def mrope_positions(model, sequences: SequenceBuilder, input_ids: Tensor, attention_mask: Tensor, visual: dict) -> Tensor:
    """M-RoPE positions ``[3, B, L]`` from the model's own ``get_rope_index`` (Qwen2.5-VL and Qwen3-VL)."""
    token_types = torch.zeros_like(input_ids, dtype=torch.int32)
    token_types[input_ids == sequences.image_token_id] = 1
    token_types[input_ids == sequences.video_token_id] = 2
    extra = {k: visual[k] for k in ("second_per_grid_ts",) if k in visual}
    position_ids, _ = model.get_rope_index(
        input_ids,
        mm_token_type_ids=token_types,
        image_grid_thw=visual.get("image_grid_thw"),
        video_grid_thw=visual.get("video_grid_thw"),
        attention_mask=attention_mask,
        **extra,
    )
    return position_ids


def grid_visual_inputs(patches: Sequence[SegmentPatches], device) -> dict[str, Tensor]:
    """The pixel and grid arguments of a Qwen-VL forward for a micro-batch of segments."""
    visual = {}
    video = [p for p in patches if p.slot == "video"]
    image = [p for p in patches if p.slot == "image"]
    if video:
        visual["pixel_values_videos"] = torch.cat([p.pixel_values for p in video]).to(device)
        visual["video_grid_thw"] = torch.stack([p.grid_thw for p in video]).to(device)
    if image:
        visual["pixel_values"] = torch.cat([p.pixel_values for p in image]).to(device)
        visual["image_grid_thw"] = torch.stack([p.grid_thw for p in image]).to(device)
    return visual


@COMPRESSORS.register("qwen3_vl")
class Qwen3VLCompressor(PrefixCachedMemoryCompressor):
    """Tempo's compressor on a Hugging Face Qwen3-VL checkpoint.

    ``pretrained`` is a local folder of a Qwen3-VL checkpoint (e.g. Qwen3-VL-2B-Instruct downloaded
    with ``hf download``); its LM head is read once for the relevance direction and then dropped.
    The other settings are the memory-token core's
    (:class:`~tempo_kit.compressors.memory.MemoryTokenCompressor`: ``k_max``, the prompts,
    ``segment_batch_size``, ``call_token_budget``, ``padding_side``, ``dtype``,
    ``attn_implementation``, ``require_prefix_cache``, ``pack_segments``) and the family's (:class:`Qwen3VLFamily`:
    the pixel bounds and ``time_tag_template``).
    """

    family = Qwen3VLFamily

    def __init__(
        self,
        pretrained: str,
        k_max: int = K_MAX,
        train_prompt: str = "standard",
        eval_prompt: str = "routing",
        prompt: str | None = None,
        segment_batch_size: int = DEFAULT_SEGMENT_BATCH_SIZE,
        call_token_budget: int | None = None,
        padding_side: str = "right",
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "sdpa",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
        time_tag_template: str = TIME_TAG_TEMPLATE,
        require_prefix_cache: bool = False,
        pack_segments: bool = False,
    ) -> None:
        super().__init__(
            pretrained, k_max, train_prompt, eval_prompt, prompt, segment_batch_size, call_token_budget,
            padding_side, dtype, attn_implementation, require_prefix_cache, pack_segments,
            min_pixels=min_pixels, max_pixels=max_pixels, image_min_pixels=image_min_pixels,
            image_max_pixels=image_max_pixels, time_tag_template=time_tag_template,
        )

    @property
    def sequences(self) -> SequenceBuilder:
        return self.adapter.sequences

    @property
    def video_config(self):
        return self.adapter.video_config

    @property
    def image_config(self):
        return self.adapter.image_config
