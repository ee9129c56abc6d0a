"""A query-agnostic baseline: Qwen3-VL's vision tower, its merged tokens average-pooled to k_max.

Each segment's merged visual tokens (``grid_t · grid_h·grid_w / 4`` of them, in temporal then
raster order) are adaptively average-pooled along the token axis to ``k_max`` tokens, so neighbours
in time and space are averaged together. It returns no relevance, so allocators fall back to their
query-agnostic behaviour. Useful as a reference point and as a template for new compressors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE, Compressor
from tempo_kit.compressors.checkpoint import local_checkpoint, patch_configs
from tempo_kit.compressors.qwen3_vl import (
    K_MAX,
    _dtype,
    check_sizes,
    set_activation_checkpointing,
    validate_inputs,
)
from tempo_kit.compressors.visual import patch_segments
from tempo_kit.errors import CheckpointError
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import CompressorOutput, Segments

#: Where a ``Qwen3VLForConditionalGeneration`` checkpoint stores its vision tower.
VISION_PREFIX = "model.visual."


def load_vision_tower(path: Path, dtype="auto", attn_implementation: str | None = "sdpa"):
    """The ``Qwen3VLVisionModel`` of a Qwen3-VL checkpoint, reading only its own tensors."""
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(path))
    vision_config = getattr(config, "vision_config", None)
    if vision_config is None:
        raise CheckpointError(f"{str(path)!r} is not a Qwen3-VL checkpoint (its config has no vision_config)")
    if attn_implementation:
        vision_config._attn_implementation = attn_implementation
    tower = AutoModel.from_config(vision_config)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = [p.name for p in sorted(path.glob("*.safetensors"))]
    state = {}
    for name in files:
        with safe_open(str(path / name), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.startswith(VISION_PREFIX):
                    state[key[len(VISION_PREFIX) :]] = handle.get_tensor(key)
    missing, unexpected = tower.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"vision tower of {str(path)!r} does not match its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    dtype = _dtype(dtype)
    if dtype == "auto":
        dtype = next(iter(state.values())).dtype if state else torch.float32
    return tower.to(dtype)


@COMPRESSORS.register("pooling")
class PoolingCompressor(Compressor):
    """Average-pools each segment's Qwen3-VL visual tokens to ``k_max`` tokens (no query, no relevance).

    Args:
        pretrained: local Qwen3-VL checkpoint folder; only its vision tower is loaded.
        k_max: tokens per segment.
        segment_batch_size: segments per vision-tower forward.
        dtype: ``"auto"`` (the checkpoint's) or a torch dtype / its name.
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
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "sdpa",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
    ) -> None:
        super().__init__()
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionBlock

        check_sizes(k_max, segment_batch_size)
        path = local_checkpoint(pretrained, "SVLM")
        self.pretrained = str(pretrained)
        self.k_max = k_max
        self.segment_batch_size = segment_batch_size
        self.video_config, self.image_config = patch_configs(
            path,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            image_min_pixels=image_min_pixels,
            image_max_pixels=image_max_pixels,
        )
        #: the Hugging Face ``Qwen3VLVisionModel``
        self.visual: nn.Module = load_vision_tower(path, dtype, attn_implementation)
        self.hidden_size = int(self.visual.config.out_hidden_size)
        self.decoder_layer_classes = (Qwen3VLVisionBlock,)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Activation checkpointing of the vision blocks (Hugging Face's implementation)."""
        set_activation_checkpointing(self.visual, True, gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self) -> None:
        set_activation_checkpointing(self.visual, False)

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
