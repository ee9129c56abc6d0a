"""What size the SVLM sees a video frame at: the released chain, or Qwen3-VL's own geometry.

Three named modes (``PREPROCESSING_MODES``):

``"released"`` (default) reproduces the released Tempo pipeline (compatibility §1), per frame:

1. **first resize** — only when the long edge exceeds ``max_long_edge`` (512): each side becomes
   ``max(16, round(side × 512 / long_edge / 16) × 16)``; smaller frames keep their size;
2. **per-frame resize** — the frame-list path of qwen-vl-utils 0.0.14 resizes every frame on its
   own with factor 64 (its merged factor 32 passed again as a patch size): ``smart_resize`` with
   ``factor=64``, ``min_pixels=4·64²``, ``max_pixels=16384·64²`` — in practice each side rounded
   to the nearest multiple of 64, half to even — then PIL's bicubic;
3. **clip resize** — the padded clip is resized with ``factor=32``, ``min_pixels=128·32²``
   (131072: small frames are *upscaled*) and
   ``max_pixels = max(min(768·32², 128000·32²·0.9 / n_clip · 2), int(131072·1.05))``,
   bicubic with antialiasing on the uint8 clip, rounded back to uint8.

Every step depends on the frame size alone (the clip length ``n_clip`` enters only the pixel
ceiling, which cannot bind below ~300 frames per clip), so the kit applies the chain to each frame
while decoding and the Qwen3-VL processor then needs no resize (``do_resize=False``).
Worked examples (W×H in → W×H seen): 640×360 → 512×256, 1920×1080 → 512×256, 512×384 → 512×384,
200×150 → 448×320, 320×240 → 416×352, 128×96 → 384×384.

``"qwen3_vl"`` is Qwen3-VL's own geometry, for training from scratch: long edge ≤ 512 with sides
rounded to multiples of 16 at decode time, then Hugging Face's video processor rule
(:func:`~tempo_kit.video.patchify.smart_resize`) when frames become patches.

``"processor"`` is the same decode-time step for any compressor family: the family's own processor,
in its adapter, then sizes the frames as it does for that family (Qwen2.5-VL's per-frame pixel
bounds at patch 14 × merge 2, SmolVLM's and InternVL's square). The released chain is Qwen3-VL's
(factor 32/64, small frames upscaled), so only ``qwen3_vl`` takes ``"released"``; each family
declares the modes it takes (``FamilyAdapter.preprocessing``) and any other is refused at build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.video.options import PREPROCESSING_MODES, Preprocessing

#: Step 1: long edge of a sampled frame (paper Table A) and the multiple its sides round to.
FIRST_RESIZE_LONG_EDGE = 512
FIRST_RESIZE_MULTIPLE = 16
#: Step 2: qwen-vl-utils 0.0.14 resizes each listed frame at twice the merged factor (2 × 32).
PER_FRAME_FACTOR = 64
PER_FRAME_MIN_PIXELS = 4 * PER_FRAME_FACTOR**2
PER_FRAME_MAX_PIXELS = 16384 * PER_FRAME_FACTOR**2
#: Step 3: the clip-level rule at the merged factor (patch 16 × merge 2).
CLIP_FACTOR = 32
CLIP_MIN_PIXELS = 128 * CLIP_FACTOR**2
CLIP_MAX_PIXELS = 768 * CLIP_FACTOR**2
CLIP_TOTAL_PIXELS = 128000 * CLIP_FACTOR**2 * 0.9
#: Frames qwen-vl-utils pads a clip to a multiple of (the temporal patch).
FRAME_FACTOR = 2
#: Largest aspect ratio qwen-vl-utils accepts.
MAX_RATIO = 200


def check_preprocessing(mode: str, where: str = "preprocessing") -> Preprocessing:
    """``mode`` if it names a preprocessing mode, else a one-line error listing the modes."""
    if mode not in PREPROCESSING_MODES:
        raise ConfigError(
            f"{where}={mode!r} is not a preprocessing mode; use one of {', '.join(PREPROCESSING_MODES)} "
            "('released' reproduces the released Tempo pipeline)"
        )
    return mode  # type: ignore[return-value]


def first_resize_size(height: int, width: int, long_edge: int = FIRST_RESIZE_LONG_EDGE) -> tuple[int, int]:
    """Step 1: ``(height, width)`` after the long-edge resize; frames with long edge ≤ 512 keep their size."""
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) <= long_edge:
        return height, width
    ratio = long_edge / max(height, width)
    m = FIRST_RESIZE_MULTIPLE
    return max(m, int(round(height * ratio / m) * m)), max(m, int(round(width * ratio / m) * m))


def qwen_smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: float) -> tuple[int, int]:
    """qwen-vl-utils' ``smart_resize``: sides to multiples of ``factor`` (half to even), pixels within bounds."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise MediaError(
            f"a {width}x{height} frame has an aspect ratio over {MAX_RATIO}, which the SVLM refuses; "
            "crop or pad the video"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def per_frame_size(height: int, width: int) -> tuple[int, int]:
    """Step 2: the factor-64 size qwen-vl-utils 0.0.14 gives each listed frame."""
    return qwen_smart_resize(height, width, PER_FRAME_FACTOR, PER_FRAME_MIN_PIXELS, PER_FRAME_MAX_PIXELS)


def clip_max_pixels(n_clip: int) -> float:
    """Step 3's pixel ceiling for a clip of ``n_clip`` frames (padded to even)."""
    padded = math.ceil(max(n_clip, 1) / FRAME_FACTOR) * FRAME_FACTOR
    return max(min(CLIP_MAX_PIXELS, CLIP_TOTAL_PIXELS / padded * FRAME_FACTOR), int(CLIP_MIN_PIXELS * 1.05))


def clip_size(height: int, width: int, n_clip: int) -> tuple[int, int]:
    """Step 3: the factor-32 clip size, upscaling frames below 131072 pixels."""
    return qwen_smart_resize(height, width, CLIP_FACTOR, CLIP_MIN_PIXELS, clip_max_pixels(n_clip))


@dataclass(frozen=True)
class ReleasedGeometry:
    """The three sizes a frame of ``source`` size goes through (``(height, width)`` each)."""

    source: tuple[int, int]
    first: tuple[int, int]
    per_frame: tuple[int, int]
    final: tuple[int, int]

    @classmethod
    def of(cls, height: int, width: int, n_clip: int = 8, long_edge: int = FIRST_RESIZE_LONG_EDGE):
        first = first_resize_size(height, width, long_edge)
        per_frame = per_frame_size(*first)
        return cls((height, width), first, per_frame, clip_size(*per_frame, n_clip))


def pil_bicubic(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``[N, H, W, 3]`` → ``size`` with PIL's bicubic (what the released code calls per frame)."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    height, width = size
    out = [np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames.numpy()]
    return torch.from_numpy(np.stack(out))


def clip_bicubic(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``[N, H, W, 3]`` → ``size``: one antialiased bicubic pass in float, clamped and rounded to uint8.

    This is torchvision's tensor resize on a uint8 clip, as qwen-vl-utils calls it, in plain torch.
    """
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return x.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def released_frames(frames: Tensor, geometry: ReleasedGeometry) -> Tensor:
    """Steps 2 and 3 on uint8 ``[N, H, W, 3]`` frames already at ``geometry.first`` size."""
    if tuple(frames.shape[1:3]) != geometry.first:
        raise ValueError(f"frames are {tuple(frames.shape[1:3])}, expected the first-resize size {geometry.first}")
    return clip_bicubic(pil_bicubic(frames, geometry.per_frame), geometry.final)
