"""Cut sampled frames into fixed windows, the compressor's unit of work (compatibility §1).

Windows of ``window`` frames start every ``stride`` frames (``stride = window``: non-overlapping,
the paper's setting; 4 frames in training, 8 at inference) until one reaches the last frame. A
video's last window may be short: its missing frames repeat its last frame so the tensor stays
``[S, F, H, W, 3]``, and :attr:`Segments.lengths` says how many the SVLM should see: the real
count, except that a lone last frame counts twice (the SVLM's temporal patch is 2 frames; compatibility §1).

A segment's time tag is its centre, ``t_i = (i × stride + window / 2) / fps_sampled`` with
``fps_sampled`` the sampling rate (2.0) — the released formula. When ``max_frames`` caps a long
video, frames are further apart than ``1 / fps_sampled`` and this formula compresses the timeline;
``centre="frames"`` uses the mean real timestamp of the window's frames instead.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from tempo_kit.types import SampleKind, Segments
from tempo_kit.video.decode import VideoClip
from tempo_kit.video.sampling import DEFAULT_SAMPLE_FPS, INFERENCE_WINDOW, TRAIN_WINDOW

__all__ = ["INFERENCE_WINDOW", "TRAIN_WINDOW"]  # defined beside the sampling rate (no torch import)
#: Side of the blank white image a text-only sample carries (released training recipe, compatibility §4).
BLANK_IMAGE_SIZE = 336
#: The SVLM's temporal patch: a lone last frame is repeated to fill one.
TEMPORAL_PATCH = 2


def segment_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Window start indices: ``0, stride, 2·stride, …`` until a window reaches the last frame."""
    if num_frames < 1 or window < 1 or stride < 1:
        raise ValueError(f"need num_frames, window, stride ≥ 1, got {num_frames}, {window}, {stride}")
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + stride)
    return starts


def make_segments(
    clip_or_frames: VideoClip | Tensor,
    window: int,
    stride: int | None = None,
    kind: SampleKind | None = None,
    *,
    frame_times: Tensor | None = None,
    fps_sampled: float | None = None,
    centre: Literal["formula", "frames"] = "formula",
    source: str | None = None,
) -> Segments:
    """Segments of a clip (or of uint8 ``[T, H, W, 3]`` frames).

    Args:
        clip_or_frames: a :class:`VideoClip` (its timestamps, sampling rate, kind and source are
            used) or a frame tensor.
        window: frames per segment. An image clip is always one segment of one frame.
        stride: frames between window starts (default ``window``).
        kind: overrides the clip's kind (``"video"`` for a bare tensor).
        frame_times: ``[T]`` seconds for a bare tensor (default ``index / fps_sampled``).
        fps_sampled: the sampling rate in the centre formula (default the clip's, else 2.0).
        centre: ``"formula"`` (released) or ``"frames"`` (mean real time of the window's frames).
    """
    if isinstance(clip_or_frames, VideoClip):
        clip = clip_or_frames
        frames, frame_times = clip.frames, clip.timestamps
        fps_sampled = fps_sampled or clip.sample_fps
        kind = kind or clip.kind
        source = source or clip.source
    else:
        frames = clip_or_frames
        kind = kind or "video"
        fps_sampled = fps_sampled or DEFAULT_SAMPLE_FPS
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {tuple(frames.shape)}")
    num_frames = frames.shape[0]
    if frame_times is None:
        frame_times = torch.arange(num_frames, dtype=torch.float64) / fps_sampled
    frame_times = frame_times.to(torch.float64)
    if kind == "image":
        if num_frames != 1:
            raise ValueError(f"an image is one frame, got {num_frames}")
        return Segments(frames[None], frame_times[None], torch.zeros(1, dtype=torch.float64), "image", source)

    stride = window if stride is None else stride
    starts = segment_starts(num_frames, window, stride)
    index = torch.tensor([[min(s + j, num_frames - 1) for j in range(window)] for s in starts])
    real = torch.tensor([min(window, num_frames - s) for s in starts])
    lengths = torch.where((real == 1) & (window > 1), torch.full_like(real, TEMPORAL_PATCH), real)
    if centre == "formula":
        times = (torch.tensor(starts, dtype=torch.float64) + window / 2) / fps_sampled
    elif centre == "frames":
        mask = torch.arange(window)[None] < real[:, None]
        times = (frame_times[index] * mask).sum(1) / real
    else:
        raise ValueError(f"centre must be 'formula' or 'frames', got {centre!r}")
    return Segments(
        frames=frames[index],
        frame_times=frame_times[index],
        times=times,
        kind=kind,
        source=source,
        lengths=lengths.long(),
    )


def blank_image_segments(size: int = BLANK_IMAGE_SIZE) -> Segments:
    """The white ``size × size`` image a text-only sample carries (``kind="text"``).

    Its memory never reaches the LLM; it makes every compressor parameter take part in each
    training step so DDP needs no ``find_unused_parameters`` (compatibility §4).
    """
    frames = torch.full((1, 1, size, size, 3), 255, dtype=torch.uint8)
    zeros = torch.zeros(1, dtype=torch.float64)
    return Segments(frames, zeros[None], zeros, kind="text", source=None)
