"""Cut sampled frames into fixed windows, the compressor's unit of work (compatibility §1).

Windows of ``window`` frames start every ``stride`` frames (``stride = window``: non-overlapping,
the paper's setting; 4 frames in training, 8 at inference) until one reaches the last frame. A
video's last window may be short: its missing frames repeat its last frame so the tensor stays
``[S, F, H, W, 3]``, and :attr:`Segments.lengths` says how many the SVLM should see: the real
count, except that a lone last frame counts twice (the SVLM's temporal patch is 2 frames; compatibility §1).

Both kinds of time tag stand on one time base, ``time_base`` (compatibility §1):

* ``"released"`` (default): the real sampling rate ``real_fps = n / duration``. Frame ``j`` of the
  sampled frames sits at ``j / real_fps``; a window's padding frames continue the positions
  (``s + len, s + len + 1, …``) as the released processor's frame-list metadata does, so the
  SVLM's per-temporal-patch tag is ``(j + 0.5) / real_fps``. The LLM's segment tag is
  ``t_i = (i × stride + window / 2) / real_fps``, the full window even for a short last one.
  Example: 20 frames over 10.25 s, window 8 → 2.1, 6.2, 10.2 s.
* ``"container"``: the container's timestamps (``index / average fps``) for the frames, and the
  mean of a window's real frame times for its segment tag. Not what the released weights saw; for
  variable-frame-rate videos whose container times a user trusts more than uniform sampling.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tempo_kit.errors import check_choice
from tempo_kit.types import SampleKind, Segments
from tempo_kit.video.decode import VideoClip
from tempo_kit.video.options import DEFAULT_TIME_BASE, INFERENCE_WINDOW, TIME_BASES, TRAIN_WINDOW, TimeBase
from tempo_kit.video.sampling import DEFAULT_SAMPLE_FPS

__all__ = ["INFERENCE_WINDOW", "TIME_BASES", "TRAIN_WINDOW", "TimeBase"]  # named in video/options.py
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


def window_positions(num_frames: int, window: int, stride: int) -> tuple[list[int], Tensor, Tensor]:
    """``(starts, slots, index)`` of the windows over ``num_frames`` sampled frames.

    ``slots`` ``[S, window]`` are the positions each window covers, continuing past the last frame
    for a short last window (its time tags); ``index`` is the frame each slot shows: the padding
    repeats the last frame.
    """
    starts = segment_starts(num_frames, window, stride)
    slots = torch.tensor(starts)[:, None] + torch.arange(window)[None]
    return starts, slots, slots.clamp(max=num_frames - 1)


def make_segments(
    clip_or_frames: VideoClip | Tensor,
    window: int,
    stride: int | None = None,
    kind: SampleKind | None = None,
    *,
    real_fps: float | None = None,
    frame_times: Tensor | None = None,
    time_base: TimeBase = DEFAULT_TIME_BASE,
    source: str | None = None,
) -> Segments:
    """Segments of a clip (or of uint8 ``[T, H, W, 3]`` frames), time-tagged on ``time_base``.

    Args:
        clip_or_frames: a :class:`VideoClip` (its real sampling rate, container timestamps, kind
            and source are used) or a frame tensor.
        window: frames per segment. An image clip is always one segment of one frame.
        stride: frames between window starts (default ``window``).
        kind: overrides the clip's kind (``"video"`` for a bare tensor).
        real_fps: the sampling rate of a bare tensor's frames (default 2.0; a clip has its own).
        frame_times: ``[T]`` container seconds of a bare tensor's frames (``time_base="container"``).
        time_base: ``"released"`` or ``"container"`` (module docstring).
    """
    check_choice(time_base, TIME_BASES, "time_base")
    if isinstance(clip_or_frames, VideoClip):
        clip = clip_or_frames
        frames, frame_times = clip.frames, clip.timestamps
        real_fps = real_fps or clip.real_fps
        kind = kind or clip.kind
        source = source or clip.source
    else:
        frames = clip_or_frames
        kind = kind or "video"
        real_fps = real_fps or DEFAULT_SAMPLE_FPS
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {tuple(frames.shape)}")
    num_frames = frames.shape[0]
    if kind == "image":
        if num_frames != 1:
            raise ValueError(f"an image is one frame, got {num_frames}")
        zeros = torch.zeros(1, dtype=torch.float64)
        return Segments(frames[None], zeros[None], zeros, "image", source)
    if time_base == "container" and frame_times is None:
        raise ValueError("time_base='container' needs frame_times (the container's seconds of each frame)")

    stride = window if stride is None else stride
    starts, slots, index = window_positions(num_frames, window, stride)
    real = torch.tensor([min(window, num_frames - s) for s in starts])
    lengths = torch.where((real == 1) & (window > 1), torch.full_like(real, TEMPORAL_PATCH), real)
    if time_base == "released":
        times_of_frames = slots.to(torch.float64) / real_fps
        times = (torch.tensor(starts, dtype=torch.float64) + window / 2) / real_fps
    else:
        container = frame_times.to(torch.float64)
        span = float(container[-1] - container[0])
        pad_step = span / (num_frames - 1) if num_frames > 1 else 1.0 / real_fps
        times_of_frames = container[index] + (slots - index).to(torch.float64) * pad_step
        mask = torch.arange(window)[None] < real[:, None]
        times = (container[index] * mask).sum(1) / real
    return Segments(
        frames=frames[index],
        frame_times=times_of_frames,
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
