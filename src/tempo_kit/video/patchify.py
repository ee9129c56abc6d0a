"""Frames → Qwen3-VL pixel patches, in plain torch (no torchvision), on any device, batched.

This reproduces what Hugging Face's Qwen3-VL processors do to a clip, so the vision tower sees the
same numbers whether frames came through ``Qwen3VLVideoProcessor`` / ``Qwen2VLImageProcessor`` or
through the kit:

1. resize (bicubic, antialiased) to the ``smart_resize`` size: both sides multiples of
   ``patch_size × merge_size`` (32), total pixels within ``[min_pixels, max_pixels]``;
2. rescale by 1/255 and normalise with mean = std = 0.5;
3. pad the frame axis to a multiple of ``temporal_patch_size`` (2) by repeating the last frame;
4. cut into the flattened patch layout ``[grid_t · grid_h · grid_w, 3 · 2 · 16 · 16]`` in the
   processor's order (time, then 2×2 merge windows in raster order, then the patches inside a
   window), which is the order the vision tower's patch merger expects.

It also gives each temporal patch its time: the mean time of its first and last frame (compatibility §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

ResizeRule = Literal["video", "image"]

#: Qwen3-VL's vision constants (``preprocessor_config.json`` / ``video_preprocessor_config.json``).
PATCH_SIZE = 16
TEMPORAL_PATCH_SIZE = 2
MERGE_SIZE = 2
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
RESCALE_FACTOR = 1 / 255
#: Pixel bounds of Qwen3-VL-2B-Instruct's video processor (whole clip) and image processor.
VIDEO_MIN_PIXELS = 4096
VIDEO_MAX_PIXELS = 25165824
IMAGE_MIN_PIXELS = 65536
IMAGE_MAX_PIXELS = 16777216
#: Largest aspect ratio the processors accept.
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class PatchConfig:
    """How frames become patches; defaults are Qwen3-VL's. ``from_pretrained`` reads a checkpoint.

    ``min_pixels`` / ``max_pixels`` bound ``grid_t·2 × H × W`` for the video rule (the whole clip,
    as ``Qwen3VLVideoProcessor`` counts) and ``H × W`` for the image rule.
    """

    patch_size: int = PATCH_SIZE
    temporal_patch_size: int = TEMPORAL_PATCH_SIZE
    merge_size: int = MERGE_SIZE
    image_mean: tuple[float, float, float] = IMAGE_MEAN
    image_std: tuple[float, float, float] = IMAGE_STD
    rescale_factor: float = RESCALE_FACTOR
    min_pixels: int = VIDEO_MIN_PIXELS
    max_pixels: int = VIDEO_MAX_PIXELS

    @property
    def factor(self) -> int:
        """Both resized sides are multiples of this (patch × merge)."""
        return self.patch_size * self.merge_size

    @property
    def patch_dim(self) -> int:
        return 3 * self.temporal_patch_size * self.patch_size * self.patch_size

    @classmethod
    def from_processor_dict(cls, data: dict, **overrides) -> PatchConfig:
        """Build from a ``preprocessor_config.json`` / ``video_preprocessor_config.json`` mapping."""
        size = data.get("size") or {}
        values = {
            "patch_size": data.get("patch_size", PATCH_SIZE),
            "temporal_patch_size": data.get("temporal_patch_size", TEMPORAL_PATCH_SIZE),
            "merge_size": data.get("merge_size", MERGE_SIZE),
            "image_mean": tuple(data.get("image_mean", IMAGE_MEAN)),
            "image_std": tuple(data.get("image_std", IMAGE_STD)),
            "rescale_factor": data.get("rescale_factor", RESCALE_FACTOR),
            "min_pixels": data.get("min_pixels", size.get("shortest_edge", VIDEO_MIN_PIXELS)),
            "max_pixels": data.get("max_pixels", size.get("longest_edge", VIDEO_MAX_PIXELS)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Patches:
    """Patchified segments, ready for the Qwen3-VL vision tower.

    Attributes:
        pixel_values: float32 ``[Σ grid_t·grid_h·grid_w, 3·T·P·P]``, segments concatenated.
        grid_thw: long ``[N, 3]`` (grid_t, grid_h, grid_w) per segment, in patches.
        timestamps: float ``[N, grid_t]`` mean time of each temporal patch (seconds), or ``None``.
    """

    pixel_values: Tensor
    grid_thw: Tensor
    timestamps: Tensor | None

    def tokens_per_temporal_patch(self, merge_size: int = MERGE_SIZE) -> Tensor:
        """Merged visual tokens per temporal patch of each segment: ``grid_h·grid_w / merge²``."""
        return self.grid_thw[:, 1] * self.grid_thw[:, 2] // (merge_size * merge_size)


def smart_resize(
    height: int,
    width: int,
    *,
    factor: int = PATCH_SIZE * MERGE_SIZE,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
    num_frames: int | None = None,
    temporal_factor: int = TEMPORAL_PATCH_SIZE,
) -> tuple[int, int]:
    """Qwen's resize rule: sides rounded to multiples of ``factor``, pixels within the bounds.

    With ``num_frames`` this is the video processor's rule (frames smaller than ``factor`` are first
    scaled up, and the pixel bounds count ``round(num_frames / temporal_factor) · temporal_factor``
    frames); without it, the image processor's. Python's ``round`` (half to even) as in the
    processors.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"cannot resize a {height}x{width} frame")
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        num_frames = max(num_frames, temporal_factor)  # a lone frame is padded to one temporal patch
        if height < factor or width < factor:
            scale = max(factor / height, factor / width)
            height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"aspect ratio of a {height}x{width} frame exceeds {MAX_ASPECT_RATIO}; crop or pad it first"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    frames = 1 if num_frames is None else num_frames
    t_bar = 1 if num_frames is None else round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt(frames * height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_frames(frames: Tensor, height: int, width: int) -> Tensor:
    """Bicubic, antialiased resize of ``[N, 3, H, W]`` 0–255 floats, returning 0–255 integers.

    Both HF paths (PIL's resize, torchvision's ``antialias=True`` on uint8) resize in two separable
    passes, width first, storing uint8 in between; doing the same (round and clamp after each pass)
    keeps bicubic overshoot identical instead of letting it through to the second pass.
    """
    if frames.shape[-1] != width:
        frames = F.interpolate(
            frames, size=(frames.shape[-2], width), mode="bicubic", align_corners=False, antialias=True
        )
        frames = frames.round_().clamp_(0, 255)
    if frames.shape[-2] != height:
        frames = F.interpolate(
            frames, size=(height, width), mode="bicubic", align_corners=False, antialias=True
        )
        frames = frames.round_().clamp_(0, 255)
    return frames


def temporal_patch_times(frame_times: Tensor, temporal_patch_size: int = TEMPORAL_PATCH_SIZE) -> Tensor:
    """``[N, F]`` frame times → ``[N, ceil(F / T)]``: mean of each temporal patch's first and last frame.

    A padding frame repeats the last frame's pixels but takes the *next position* in time (the
    released processor numbers a padded frame list 0..len−1, compatibility §1): its time is the last
    time plus the last step. A lone frame has no step and keeps its time.
    """
    if frame_times.ndim != 2 or frame_times.shape[1] == 0:
        raise ValueError(f"frame_times must be [N, F] with F ≥ 1, got {tuple(frame_times.shape)}")
    frame_times = frame_times.to(torch.float64)
    if pad := -frame_times.shape[1] % temporal_patch_size:
        step = frame_times[:, -1:] - frame_times[:, -2:-1] if frame_times.shape[1] > 1 else 0.0
        ahead = frame_times[:, -1:] + step * torch.arange(1, pad + 1, dtype=torch.float64)
        frame_times = torch.cat([frame_times, ahead], dim=1)
    grouped = frame_times.view(frame_times.shape[0], -1, temporal_patch_size)
    return (grouped[..., 0] + grouped[..., -1]) / 2


def processor_size(height: int, width: int, num_frames: int, config: PatchConfig, rule: ResizeRule) -> tuple[int, int]:
    """``(height, width)`` the processor resizes ``num_frames`` frames of a segment to, by ``rule``.

    The identity for frames that already conform (sides multiples of 32, pixels within bounds),
    which is what the released preprocessing hands over.
    """
    if rule == "video":
        return smart_resize(
            height,
            width,
            factor=config.factor,
            min_pixels=config.min_pixels,
            max_pixels=config.max_pixels,
            num_frames=num_frames,
            temporal_factor=config.temporal_patch_size,
        )
    if rule == "image":
        return smart_resize(
            height, width, factor=config.factor, min_pixels=config.min_pixels, max_pixels=config.max_pixels
        )
    raise ValueError(f"unknown resize rule {rule!r}; use 'video' or 'image'")


def patchify(
    frames: Tensor,
    frame_times: Tensor | None = None,
    config: PatchConfig | None = None,
    *,
    rule: ResizeRule = "video",
) -> Patches:
    """Turn uint8 RGB frames ``[..., F, H, W, 3]`` into Qwen3-VL patches (see module docstring).

    Leading dimensions are segments; every segment is one HF "video" (or image, for ``F = 1``)
    and all share one frame size, so they are processed as one batch. ``rule`` picks the video or
    image processor's resize rule. ``frame_times`` ``[..., F]`` (seconds) gives ``timestamps``.
    """
    config = config or PatchConfig()
    if frames.ndim < 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [..., F, H, W, 3] RGB, got shape {tuple(frames.shape)}")
    *lead, num_frames, height, width, _ = frames.shape
    segments = frames.reshape(-1, num_frames, height, width, 3)
    count = segments.shape[0]
    if num_frames == 0 or count == 0:
        raise ValueError(f"frames must hold at least one frame, got shape {tuple(frames.shape)}")

    new_h, new_w = processor_size(height, width, num_frames, config, rule)

    flat = segments.reshape(count * num_frames, height, width, 3).permute(0, 3, 1, 2).to(torch.float32)
    flat = resize_frames(flat, new_h, new_w)
    mean = torch.tensor(config.image_mean, dtype=torch.float32, device=flat.device).view(1, 3, 1, 1)
    std = torch.tensor(config.image_std, dtype=torch.float32, device=flat.device).view(1, 3, 1, 1)
    flat = (flat * config.rescale_factor - mean) / std
    video = flat.view(count, num_frames, 3, new_h, new_w)

    t, p, m = config.temporal_patch_size, config.patch_size, config.merge_size
    if pad := -num_frames % t:
        video = torch.cat([video, video[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)
    grid_t, grid_h, grid_w = video.shape[1] // t, new_h // p, new_w // p
    patches = video.reshape(count, grid_t, t, 3, grid_h // m, m, p, grid_w // m, m, p)
    patches = patches.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    pixel_values = patches.reshape(count * grid_t * grid_h * grid_w, 3 * t * p * p)
    grid_thw = torch.tensor([[grid_t, grid_h, grid_w]] * count, dtype=torch.long, device=frames.device)

    timestamps = None
    if frame_times is not None:
        expected = (*lead, num_frames)
        if tuple(frame_times.shape) != tuple(expected):
            raise ValueError(f"frame_times must be {list(expected)}, got {list(frame_times.shape)}")
        timestamps = temporal_patch_times(frame_times.reshape(count, num_frames), t)
    return Patches(pixel_values=pixel_values, grid_thw=grid_thw, timestamps=timestamps)
