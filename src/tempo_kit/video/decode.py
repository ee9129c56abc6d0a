"""Decode a video into sampled, resized frames with their real timestamps (compatibility §1).

:func:`load_video` is the one entry point: it opens the file with a backend, picks the frame indices
(:mod:`~tempo_kit.video.sampling`), decodes them in bounded chunks resized to the target size, and
returns a :class:`VideoClip`. At no point are full-resolution frames of the whole video held: the
peak is the resized clip plus one chunk.

Three resize paths, all bicubic:

* ``resize="decoder"`` (default): FFmpeg's swscale bicubic scaler inside the decoder (decord's
  ``VideoReader(width=, height=)``; PyAV's ``reformat``). Fastest: full-resolution RGB frames are
  never made. It differs from PIL's antialiased bicubic by under one grey level on average (up to
  tens of levels on hard synthetic edges; see the data docs).
* ``resize="pil"``: decode at native size in chunks of at most ``chunk_bytes`` and resize each
  frame with PIL's bicubic — the released implementation's resize, bit for bit, with bounded memory.
* ``resize="torch"``: as ``"pil"`` but ``torch.nn.functional.interpolate(mode="bicubic",
  antialias=True)`` (within one grey level of PIL; about 4× slower than PIL on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tempo_kit.video.backends import open_video
from tempo_kit.video.sampling import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_LONG_EDGE,
    DEFAULT_MIN_FRAMES,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SIZE_MULTIPLE,
    num_sampled_frames,
    resized_size,
    sample_indices,
)

#: Frames decoded per backend call when resizing in the decoder (bounds decord's batch buffers).
DEFAULT_CHUNK_FRAMES = 64
#: With ``resize="pil"``/``"torch"``, native-size frames decoded at once are limited to this many bytes.
DEFAULT_CHUNK_BYTES = 64 * 2**20
#: Frames resized per ``interpolate`` call (its float32 buffers are ~4× the uint8 frames).
RESIZE_GROUP = 4

ResizeMode = Literal["decoder", "pil", "torch"]


@dataclass
class VideoClip:
    """Sampled frames of one video (or one image, ``T = 1``).

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB, resized.
        timestamps: float64 ``[T]`` seconds, ``indices / fps`` (the container's fps).
        indices: int64 ``[T]`` frame indices in the source (may repeat for very short videos).
        fps: the container's average frame rate (``nan`` for an image).
        duration: ``num_source_frames / fps`` seconds (0 for an image).
        source: the file path.
        sample_fps: the sampling rate asked for (2.0); segment centre times use it (compatibility §1).
        num_source_frames: frames in the container.
        kind: ``"video"`` or ``"image"``.
    """

    frames: Tensor
    timestamps: Tensor
    indices: Tensor
    fps: float
    duration: float
    source: str | None = None
    sample_fps: float = DEFAULT_SAMPLE_FPS
    num_source_frames: int = 0
    kind: str = "video"

    def __len__(self) -> int:
        return self.frames.shape[0]


def resize_frames(frames: Tensor, size: tuple[int, int], method: str = "pil") -> Tensor:
    """Bicubic, antialiased resize of uint8 ``[N, H, W, 3]`` frames to ``size=(H', W')``.

    ``method="pil"`` (PIL ``Image.resize(BICUBIC)``, what the released code does per frame) or
    ``"torch"`` (``interpolate(mode="bicubic", antialias=True)``).
    """
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    if method == "pil":
        from PIL import Image

        height, width = size
        resized = [Image.fromarray(f).resize((width, height), Image.BICUBIC) for f in frames.numpy()]
        return torch.from_numpy(np.stack([np.asarray(r) for r in resized]))
    if method != "torch":
        raise ValueError(f"resize method must be 'pil' or 'torch', got {method!r}")
    out = torch.empty((frames.shape[0], *size, 3), dtype=torch.uint8)
    for start in range(0, frames.shape[0], RESIZE_GROUP):
        x = frames[start : start + RESIZE_GROUP].permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        out[start : start + RESIZE_GROUP] = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return out


def load_video(
    path: str | Path,
    *,
    fps: float = DEFAULT_SAMPLE_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_long_edge: int | None = DEFAULT_MAX_LONG_EDGE,
    size_multiple: int = DEFAULT_SIZE_MULTIPLE,
    backend: str = "decord",
    resize: ResizeMode = "decoder",
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> VideoClip:
    """Decode ``path`` at ``fps`` frames per second of video, resized, with real timestamps.

    Frame count ``round(duration × fps)`` in ``[min_frames, max_frames]``, indices
    ``round(linspace(0, N − 1, T))``, timestamps ``index / container_fps``, frames resized to
    :func:`~tempo_kit.video.sampling.resized_size`.

    Raises:
        MediaError: missing, unreadable, truncated or 0-frame file, or an impossible fps; the
            message names the file and the reason.
    """
    if resize not in ("decoder", "pil", "torch"):
        raise ValueError(f"resize must be 'decoder', 'pil' or 'torch', got {resize!r}")

    def size_rule(height: int, width: int) -> tuple[int, int]:
        return resized_size(height, width, max_long_edge, size_multiple)

    with open_video(path, backend, size_rule if resize == "decoder" else None) as source:
        duration = source.num_frames / source.fps
        count = num_sampled_frames(duration, fps, min_frames, max_frames)
        indices = sample_indices(source.num_frames, count)
        size = size_rule(source.height, source.width)
        unique, inverse = np.unique(indices, return_inverse=True)
        frames = torch.empty((len(unique), *size, 3), dtype=torch.uint8)
        if resize == "decoder":
            chunks = source.iter_chunks(unique, size, chunk_frames)
        else:
            per_chunk = max(1, min(chunk_frames, chunk_bytes // (source.height * source.width * 3)))
            chunks = source.iter_chunks(unique, None, per_chunk)
        filled = 0
        for chunk in chunks:
            method = "pil" if resize == "decoder" else resize  # decoder output is already at size
            chunk = resize_frames(torch.from_numpy(chunk), size, method)
            frames[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            del chunk
        if filled != len(unique):
            raise RuntimeError(f"backend {backend!r} returned {filled} of {len(unique)} frames for {path}")
        if len(unique) != len(indices):
            frames = frames[torch.from_numpy(inverse)]
        index_tensor = torch.from_numpy(indices)
        return VideoClip(
            frames=frames,
            timestamps=index_tensor.double() / source.fps,
            indices=index_tensor,
            fps=source.fps,
            duration=duration,
            source=str(path),
            sample_fps=fps,
            num_source_frames=source.num_frames,
        )
