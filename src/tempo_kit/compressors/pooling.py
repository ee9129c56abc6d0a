"""A query-agnostic baseline: Qwen3-VL's vision tower, its merged tokens average-pooled to k_max.

Each segment's merged visual tokens (``grid_t · grid_h·grid_w / 4`` of them, in temporal then
raster order) are adaptively average-pooled along the token axis to ``k_max`` tokens, so neighbours
in time and space are averaged together. It returns no relevance, so allocators fall back to their
query-agnostic behaviour. Useful as a reference point and as a template for new compressors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE, Compressor
from tempo_kit.compressors.checkpoint import QWEN3_VL_MODEL_TYPE, patch_configs
from tempo_kit.compressors.inputs import K_MAX, check_sizes, validate_inputs
from tempo_kit.compressors.visual import patch_segments, segment_grids
from tempo_kit.dtypes import AUTO, resolve_dtype
from tempo_kit.hf import (
    build_from_config,
    building_on_meta,
    checkpoint_dtype,
    initial_tensors,
    load_tensors,
    read_config,
    save_component_folder,
    set_activation_checkpointing,
)
from tempo_kit.hub import SVLM_HUB_NAME, local_checkpoint
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import CompressorOutput, Segments

#: Where a ``Qwen3VLForConditionalGeneration`` checkpoint stores its vision tower.
VISION_PREFIX = "model.visual"


@COMPRESSORS.register("pooling")
class PoolingCompressor(Compressor):
    """Average-pools each segment's Qwen3-VL visual tokens to ``k_max`` tokens (no query, no relevance).

    Args:
        pretrained: local Qwen3-VL checkpoint folder; only its vision tower is loaded.
        k_max: tokens per segment.
        segment_batch_size: segments per vision-tower forward.
        call_token_budget: most vision-tower patches one forward may hold (the tower packs the
            segments' patches without padding, so a call costs their sum; :meth:`segment_tokens`).
            ``None``: calls are cut by ``segment_batch_size`` alone.
        dtype: ``"auto"`` (the checkpoint config's) or any name :mod:`tempo_kit.dtypes` accepts.
        attn_implementation: vision attention implementation (Hugging Face name).
        min_pixels: lower video pixel bound, as for ``qwen3_vl``.
        max_pixels: upper video pixel bound, as for ``qwen3_vl``.
        image_min_pixels: lower image pixel bound, as for ``qwen3_vl``.
        image_max_pixels: upper image pixel bound, as for ``qwen3_vl``.
    """

    def __init__(
        self,
        pretrained: str,
        k_max: int = K_MAX,
        segment_batch_size: int = DEFAULT_SEGMENT_BATCH_SIZE,
        call_token_budget: int | None = None,
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "sdpa",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
    ) -> None:
        super().__init__()
        from transformers import AutoModel
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionBlock

        check_sizes(k_max, segment_batch_size, call_token_budget)
        where = "compressor 'pooling'"
        path = local_checkpoint(pretrained, "SVLM", model_type=QWEN3_VL_MODEL_TYPE, example_hub=SVLM_HUB_NAME)
        self.pretrained = str(path)
        #: the vision tower is the checkpoint's ``model.visual`` (weights and adapters are keyed so)
        self.hf_module_paths = {"visual": VISION_PREFIX}
        self.k_max = k_max
        self.segment_batch_size = segment_batch_size
        self.call_token_budget = call_token_budget
        self.video_config, self.image_config = patch_configs(
            path,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            image_min_pixels=image_min_pixels,
            image_max_pixels=image_max_pixels,
        )
        config = read_config(path, where)
        if resolve_dtype(dtype, f"{where}: dtype") == AUTO:
            dtype = checkpoint_dtype(config)  # the vision config names no dtype of its own
        #: the Hugging Face ``Qwen3VLVisionModel``
        self.visual: nn.Module = build_from_config(
            AutoModel.from_config, config.vision_config, dtype, attn_implementation, where
        )
        self.hidden_size = int(self.visual.config.out_hidden_size)
        self.decoder_layer_classes = (Qwen3VLVisionBlock,)
        if not building_on_meta():  # on the meta device the structure is all there is
            load_tensors(self, self.initial_state_dict(), f"{where} built from {path}")

    def initial_state_dict(self) -> dict:
        """The vision tower's tensors, read from ``pretrained`` (only its own keys)."""
        return initial_tensors(self, Path(self.pretrained))[0]

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the vision tower as the ``model.visual.*`` part of a Qwen3-VL checkpoint folder
        (tensors unchanged from ``pretrained`` in its dtype); ``pretrained=folder`` rebuilds it."""
        save_component_folder(self, Path(self.pretrained), Path(folder))

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Activation checkpointing of the vision blocks (Hugging Face's implementation)."""
        set_activation_checkpointing(self.visual, True, gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self) -> None:
        set_activation_checkpointing(self.visual, False)

    def segment_tokens(self, segments: Segments, query: str = "", system_prompt: str | None = None) -> list[int]:
        """Vision-tower patches of each segment, ``grid_t·grid_h·grid_w`` (the query plays no part)."""
        return [g.num_patches for g in segment_grids(segments, self.video_config, self.image_config)]

    def call_tokens(self, counts: Sequence[int]) -> int:
        """The tower runs the segments' patches concatenated, unpadded: a call costs their sum."""
        return sum(counts)

    def forward(
        self, segments: Sequence[Segments], queries: Sequence[str] | None = None, system_prompt: str | None = None
    ) -> CompressorOutput:
        """One vision-tower pass over every segment given; ``queries`` are ignored (query-agnostic)."""
        validate_inputs(segments, [""] * len(segments) if queries is None else queries, require_query=False)
        device = next(self.visual.parameters()).device
        dtype = next(self.visual.parameters()).dtype
        items = [(i, j) for i, sample in enumerate(segments) for j in range(len(sample))]
        patches = patch_segments(segments, items, self.video_config, self.image_config, device)
        pixels = torch.cat([p.pixel_values for p in patches]).to(device, dtype)
        grids = torch.stack([p.grid_thw for p in patches]).to(device)
        tokens = self.visual(pixels, grid_thw=grids).pooler_output
        memories = [
            F.adaptive_avg_pool1d(per_segment.T.unsqueeze(0), self.k_max)[0].T
            for per_segment in tokens.split([p.num_tokens for p in patches])
        ]
        return CompressorOutput(
            memory=torch.stack(memories), relevance=None, num_segments=[len(s) for s in segments]
        )
