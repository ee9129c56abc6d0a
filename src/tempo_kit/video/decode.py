"""Decode a video into sampled frames at the size the SVLM sees, on the real sampling rate (compatibility §1).

:func:`load_video` is the one entry point: it opens the file with a backend, picks the frame indices
(:mod:`~tempo_kit.video.sampling`), decodes them in bounded chunks, brings them to the size of the
chosen preprocessing mode (:mod:`~tempo_kit.video.preprocessing`) and returns a :class:`VideoClip`.
At no point are full-resolution frames of the whole video held: the peak is the resized clip plus
one chunk.

Three resize paths, all bicubic:

* ``resize="pil"`` (default): decode at native size in chunks of at most ``chunk_bytes`` and
  resize each frame with PIL's bicubic — with ``preprocessing="released"`` the released chain,
  bit for bit (first resize, per-frame factor-64 resize, clip resize), with bounded memory.
* ``resize="decoder"``: FFmpeg's swscale bicubic scaler inside the decoder (decord's
  ``VideoReader(width=, height=)``; PyAV's ``reformat``) does the first (long-edge) resize, from
  YUV, so full-resolution RGB frames are never made; the later steps run exactly as on the exact
  path. Faster; its pixels differ from the exact path by the first resize alone (measured in
  ``benchmarks/bench_decode.py``).
* ``resize="torch"``: as ``"pil"`` but the first resize is
  ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)`` (within one grey level of PIL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tempo_kit.defaults import DEFAULT_BACKEND
from tempo_kit.errors import MediaError, check_choice
from tempo_kit.video.backends import open_video
from tempo_kit.video.frame_times import FrameTiming, check_timing, note_no_times, presentation_indices
from tempo_kit.video.options import (
    DEFAULT_PREPROCESSING,
    DEFAULT_RESIZE,
    DEFAULT_TIME_BASE,
    RESIZE_MODES,
    TIME_BASES,
    Preprocessing,
    ResizeMode,
    TimeBase,
)
from tempo_kit.video.preprocessing import (
    MAX_RATIO,
    ReleasedGeometry,
    check_preprocessing,
    released_frames,
)
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

# RESIZE_MODES, DEFAULT_RESIZE and ResizeMode are named in video/options.py (no torch there)


@dataclass
class VideoClip:
    """Sampled frames of one video (or one image, ``T = 1``).

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB at the size the SVLM sees (see ``preprocessing``).
        timestamps: float64 ``[T]`` seconds where the frames sit in the container: ``indices / fps``
            (average frame rate), or with ``time_base="container"`` each frame's real presentation
            time from the first frame. Only the ``"container"`` time base tags with these.
        indices: int64 ``[T]`` frame indices in the source (may repeat for very short videos).
        fps: the container's average frame rate (``nan`` for an image).
        duration: ``num_source_frames / fps`` seconds (0 for an image); with
            ``time_base="container"`` the real length from the presentation times.
        source: the file path.
        real_fps: the real sampling rate ``T / duration`` — the time base of every time tag
            (compatibility §1); below the nominal 2.0 once ``max_frames`` caps a long video.
        num_source_frames: frames in the container.
        kind: ``"video"`` or ``"image"``.
        preprocessing: the mode that sized the frames (``"released"`` or ``"qwen3_vl"``).
    """

    frames: Tensor
    timestamps: Tensor
    indices: Tensor
    fps: float
    duration: float
    source: str | None = None
    real_fps: float = DEFAULT_SAMPLE_FPS
    num_source_frames: int = 0
    kind: str = "video"
    preprocessing: str = DEFAULT_PREPROCESSING

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def sample_times(self) -> Tensor:
        """float64 ``[T]``: ``position / real_fps``, each frame's time on the model's time base."""
        return torch.arange(len(self), dtype=torch.float64) / self.real_fps


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


@dataclass(frozen=True)
class FramePlan:
    """The sizes one preprocessing mode brings a frame to, and the resizes that get it there."""

    preprocessing: Preprocessing
    max_long_edge: int | None
    size_multiple: int

    @classmethod
    def for_mode(cls, preprocessing: str, max_long_edge: int | None, size_multiple: int) -> FramePlan:
        return cls(check_preprocessing(preprocessing), max_long_edge, size_multiple)

    def geometry(self, height: int, width: int) -> ReleasedGeometry:
        return ReleasedGeometry.of(height, width, long_edge=self.max_long_edge or max(height, width))

    def final_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the SVLM sees (``qwen3_vl``, ``processor``: before its processor's own rule)."""
        if self.preprocessing == "released":
            return self.geometry(height, width).final
        if max(height, width) / min(height, width) > MAX_RATIO:
            raise MediaError(
                f"a {width}x{height} video has an aspect ratio over {MAX_RATIO}, which the SVLM refuses; "
                "crop or pad it"
            )
        return resized_size(height, width, self.max_long_edge, self.size_multiple)

    def first_size(self, height: int, width: int) -> tuple[int, int]:
        """The size of the first (long-edge) resize, the one a decoder can do for the fast path."""
        if self.preprocessing == "released":
            return self.geometry(height, width).first
        return self.final_size(height, width)

    def apply(self, frames: Tensor, method: str = "pil", source: tuple[int, int] | None = None) -> Tensor:
        """uint8 ``[N, H, W, 3]`` frames → the final size. ``method`` does the first resize; frames
        a decoder already brought to the first size pass ``source``, the video's own size."""
        height, width = source or frames.shape[1:3]
        if self.preprocessing != "released":  # qwen3_vl, processor: the family's processor does the rest
            return resize_frames(frames, self.final_size(height, width), method)
        geometry = self.geometry(height, width)
        return released_frames(resize_frames(frames, geometry.first, method), geometry)


def prepare_frames(
    frames: Tensor,
    preprocessing: str = DEFAULT_PREPROCESSING,
    *,
    resize: str = DEFAULT_RESIZE,
    max_long_edge: int | None = DEFAULT_MAX_LONG_EDGE,
    size_multiple: int = DEFAULT_SIZE_MULTIPLE,
) -> Tensor:
    """In-memory uint8 ``[T, H, W, 3]`` frames brought to the SVLM's size as :func:`load_video` does."""
    method = "pil" if resize == "decoder" else resize  # no decoder here: the exact path
    return FramePlan.for_mode(preprocessing, max_long_edge, size_multiple).apply(frames, method)


def load_video(
    path: str | Path,
    *,
    fps: float = DEFAULT_SAMPLE_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_frames: int = DEFAULT_MIN_FRAMES,
    preprocessing: Preprocessing = DEFAULT_PREPROCESSING,
    max_long_edge: int | None = DEFAULT_MAX_LONG_EDGE,
    size_multiple: int = DEFAULT_SIZE_MULTIPLE,
    backend: str = DEFAULT_BACKEND,
    resize: ResizeMode = DEFAULT_RESIZE,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    time_base: TimeBase = DEFAULT_TIME_BASE,
) -> VideoClip:
    """Decode ``path`` at ``fps`` frames per second of video, at the SVLM's size, on the real sampling rate.

    Frame count ``round(duration × fps)`` in ``[min_frames, max_frames]`` (a 1-frame video gives
    1), indices ``round(linspace(0, N − 1, T))``, ``real_fps = T / duration``. Frame size:
    ``preprocessing="released"`` — the released chain (first resize to long edge
    ``max_long_edge``, then the per-frame and clip resizes of
    :mod:`~tempo_kit.video.preprocessing`); ``"qwen3_vl"`` —
    :func:`~tempo_kit.video.sampling.resized_size` (long edge ≤ ``max_long_edge``, sides multiples
    of ``size_multiple``), Qwen3-VL's processor rule following when frames become patches.

    ``time_base="container"`` measures, samples and time-stamps by the frames' real presentation
    times (:mod:`~tempo_kit.video.frame_times`): the right reading of a variable-frame-rate video,
    which the default (released) time base misreads and warns about once.

    Raises:
        MediaError: missing, unreadable, truncated, 0-frame or 0-duration file, or an impossible
            fps; the message names the file and the reason.
    """
    opened = open_sampled(
        path,
        fps=fps,
        max_frames=max_frames,
        min_frames=min_frames,
        preprocessing=preprocessing,
        max_long_edge=max_long_edge,
        size_multiple=size_multiple,
        backend=backend,
        resize=resize,
        time_base=time_base,
    )
    with opened.source:
        unique, inverse = np.unique(opened.indices, return_inverse=True)
        frames = torch.empty((len(unique), *opened.final_size, 3), dtype=torch.uint8)
        filled = 0
        for chunk in decode_frames(opened.source, opened.plan, unique, resize, chunk_frames, chunk_bytes):
            frames[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            del chunk
        if filled != len(unique):
            raise RuntimeError(f"backend {backend!r} returned {filled} of {len(unique)} frames for {path}")
        if len(unique) != len(opened.indices):
            frames = frames[torch.from_numpy(inverse)]
        return opened.clip(frames)


@dataclass
class SampledVideo:
    """An opened video with its sampled frame indices and frame plan, nothing decoded yet: the
    start that :func:`load_video` and the streamed decode (:mod:`tempo_kit.inference.overlap`)
    share. The caller closes ``source``."""

    source: Any
    plan: FramePlan
    duration: float
    indices: np.ndarray
    preprocessing: str
    path: str
    timing: FrameTiming | None = None  # the real presentation times, on the container time base

    @property
    def final_size(self) -> tuple[int, int]:
        """(height, width) of every decoded frame."""
        return self.plan.final_size(self.source.height, self.source.width)

    def clip(self, frames: Tensor) -> VideoClip:
        """The :class:`VideoClip` of these indices holding ``frames`` (``[T, 0, 0, 3]``: times only)."""
        index_tensor = torch.from_numpy(self.indices)
        if self.timing is None:
            timestamps = index_tensor.double() / self.source.fps
        else:
            timestamps = torch.from_numpy(self.timing.times[self.indices])
        return VideoClip(
            frames=frames,
            timestamps=timestamps,
            indices=index_tensor,
            fps=self.source.fps,
            duration=self.duration,
            source=self.path,
            real_fps=len(self.indices) / self.duration,
            num_source_frames=self.source.num_frames,
            preprocessing=self.preprocessing,
        )


def open_sampled(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    min_frames: int,
    preprocessing: Preprocessing,
    max_long_edge: int | None,
    size_multiple: int,
    backend: str,
    resize: ResizeMode,
    time_base: TimeBase = DEFAULT_TIME_BASE,
) -> SampledVideo:
    """Open ``path`` and pick its sampled frames (see :func:`load_video`); the source is closed on error."""
    check_choice(resize, RESIZE_MODES, "resize")
    check_choice(time_base, TIME_BASES, "time_base")
    plan = FramePlan.for_mode(preprocessing, max_long_edge, size_multiple)
    source = open_video(path, backend, plan.first_size if resize == "decoder" else None)
    try:
        timing = check_timing(source, time_base)
        if time_base == "container" and timing is not None:
            duration, indices = presentation_sampled(source, timing, fps, min_frames, max_frames)
        else:
            if time_base == "container":  # no usable timestamps: the released reading is all there is
                note_no_times(source.path)
            duration, indices = sampled_indices(source, fps, min_frames, max_frames)
            timing = None
    except BaseException:
        source.close()
        raise
    return SampledVideo(source, plan, duration, indices, preprocessing, str(path), timing)


def sampled_indices(source, fps: float, min_frames: int, max_frames: int) -> tuple[float, np.ndarray]:
    """``(duration, frame indices)`` of an opened video at ``fps`` in ``[min_frames, max_frames]``."""
    duration = source.num_frames / source.fps
    if not duration > 0:
        raise MediaError(
            f"{source.path} has zero duration ({source.num_frames} frames at {source.fps} fps); re-encode it"
        )
    count = 1 if source.num_frames == 1 else num_sampled_frames(duration, fps, min_frames, max_frames)
    return duration, sample_indices(source.num_frames, count)


def presentation_sampled(
    source, timing: FrameTiming, fps: float, min_frames: int, max_frames: int
) -> tuple[float, np.ndarray]:
    """``(duration, frame indices)`` by the real presentation times (``time_base="container"``):
    the real length, and frames evenly spaced in time rather than in index."""
    duration = timing.duration
    if not duration > 0:
        raise MediaError(f"{source.path} has zero duration by its presentation times; re-encode it")
    count = 1 if source.num_frames == 1 else num_sampled_frames(duration, fps, min_frames, max_frames)
    return duration, presentation_indices(timing, count)


def decode_frames(
    source,
    plan: FramePlan,
    indices: np.ndarray,
    resize: ResizeMode = DEFAULT_RESIZE,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    stream: bool = False,
):
    """uint8 ``[n, H, W, 3]`` chunks of the frames at sorted unique ``indices``, at ``plan``'s final
    size: the decode-and-resize step of :func:`load_video`, usable on any range of a video.

    ``stream=True`` reads through the source's ``stream_chunks``: one pass whose host memory stays
    bounded by a chunk however long the video, for a caller that drops each chunk once used.
    """
    native = (source.height, source.width)
    read = source.stream_chunks if stream else source.iter_chunks
    if resize == "decoder":
        chunks = read(indices, plan.first_size(*native), chunk_frames)
    else:
        per_chunk = max(1, min(chunk_frames, chunk_bytes // (source.height * source.width * 3)))
        chunks = read(indices, None, per_chunk)
    for chunk in chunks:
        yield plan.apply(torch.from_numpy(chunk), "pil" if resize == "decoder" else resize, native)
