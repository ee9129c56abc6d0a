"""When each frame is really presented, and what that means for a variable-frame-rate video.

The released pipeline places frame ``i`` at ``i / fps`` (average frame rate) and a video's length
at ``frames / fps`` (compatibility §1). For a constant-rate video that is the truth; for a
variable-frame-rate one (a screen recording that paused, a phone that dropped its rate, a stream
with a gap) it is not: 2 s of frames, a 10 s gap and 2 s of frames in Matroska read as 4 s long,
with every time after the gap 10 s early. :func:`check_timing` notices it (the frames' real
presentation times against ``index / fps``) and says so once per file, pointing at
``time_base: container``, which samples, measures and tags by the real presentation times
(:func:`presentation_indices`, :class:`FrameTiming`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tempo_kit.video.sampling import sample_indices

logger = logging.getLogger("tempo_kit.video")

#: A video is called variable-frame-rate when some frame's real presentation time (from the first
#: frame) differs from ``index / fps`` by more than this many seconds, or its real length differs
#: from ``frames / fps`` by more. One second is ten steps of the 0.1 s the time tags are printed
#: in, and a quarter of a 4-frame training segment at the paper's 2 frames per second.
VFR_DRIFT_SECONDS = 1.0


def packet_times(path: str, num_frames: int) -> np.ndarray | None:
    """float64 ``[num_frames]`` presentation times (seconds) of the first video stream's frames,
    from its packets in presentation order (demuxing only, no decoding); ``None`` where packets
    carry no timestamps or their count is not ``num_frames``."""
    try:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            base = stream.time_base
            stamps = [packet.pts for packet in container.demux(stream) if packet.size]
    except Exception:  # the decoder reports unreadable files; here it only means "no times"
        return None
    if len(stamps) != num_frames or any(stamp is None for stamp in stamps) or base is None:
        return None
    return np.sort(np.asarray(stamps, dtype=np.float64)) * float(base)


@dataclass(frozen=True)
class FrameTiming:
    """The real presentation times of a video's frames against the released ``index / fps``.

    Attributes:
        times: float64 ``[N]`` seconds from the first frame (the first is 0).
        fps: the container's average frame rate, which the released rule divides by.
    """

    times: np.ndarray
    fps: float

    @classmethod
    def of(cls, raw_times: np.ndarray, fps: float) -> FrameTiming:
        times = np.asarray(raw_times, dtype=np.float64)
        return cls(times - times[0], float(fps))

    @property
    def frame_step(self) -> float:
        """How long a frame is shown: the median spacing of the times (``1 / fps`` for one frame)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else 1.0 / self.fps

    @property
    def duration(self) -> float:
        """The real length: the last frame's time plus one frame step."""
        return float(self.times[-1]) + self.frame_step

    @property
    def released_duration(self) -> float:
        return len(self.times) / self.fps

    @property
    def drift(self) -> float:
        """Seconds between the real times and ``index / fps``, at the worst frame or at the end."""
        by_index = np.arange(len(self.times)) / self.fps
        return max(float(np.max(np.abs(self.times - by_index))), abs(self.duration - self.released_duration))

    @property
    def largest_gap(self) -> float:
        return float(np.max(np.diff(self.times))) if len(self.times) > 1 else 0.0

    @property
    def variable(self) -> bool:
        """Whether ``index / fps`` misplaces some frame by more than :data:`VFR_DRIFT_SECONDS`."""
        return self.drift > VFR_DRIFT_SECONDS


def read_timing(source) -> FrameTiming | None:
    """The :class:`FrameTiming` of an opened source, or ``None`` where its frames carry no times."""
    raw = source.frame_times()
    if raw is None or len(raw) != source.num_frames or not np.all(np.isfinite(raw)):
        return None
    return FrameTiming.of(raw, source.fps)


#: Fractional frame positions are rounded to this many decimals before the released half-to-even
#: rounding, so a position that is a half in exact arithmetic (1.5) is not taken as 1.4999999999.
POSITION_DIGITS = 9

_WARNED: set[str] = set()


def check_timing(source, time_base: str) -> FrameTiming | None:
    """The source's timing; on the released time base, one warning per file when it is variable.

    Returns ``None`` where the frames carry no presentation times (then only ``index / fps`` exists).
    """
    timing = read_timing(source)
    if timing is None or not timing.variable or time_base != "released" or source.path in _WARNED:
        return timing
    _WARNED.add(source.path)
    logger.warning(
        "%s has a variable frame rate: it lasts %.1f s, not %.1f s (%d frames at %.3g fps), a gap of %.1f s "
        "between frames against %.3g s nominal, and frame times up to %.1f s off index/fps; set "
        "time_base: container (--time-base container) to sample and tag it by its real presentation times",
        source.path, timing.duration, timing.released_duration, len(timing.times), timing.fps,
        timing.largest_gap, 1.0 / timing.fps, timing.drift,
    )  # fmt: skip
    return timing


def note_no_times(path: str) -> None:
    """Say once that a file asked to be read on the container time base has no usable timestamps."""
    if path not in _WARNED:
        _WARNED.add(path)
        logger.warning("%s carries no usable frame timestamps: time_base: container reads it by index/fps", path)


def presentation_indices(timing: FrameTiming, count: int) -> np.ndarray:
    """int64 ``[count]`` frame indices sampled uniformly in presentation time: the frame nearest to
    each of ``count`` evenly spaced instants from the first frame to the last.

    Each instant is placed between the two frames around it (a fractional frame position, linear in
    time) and rounded as the released rule rounds (half to even, after snapping float noise below
    :data:`POSITION_DIGITS` decimals): on a constant-rate video this is exactly the released
    ``round(linspace(0, N − 1, count))``; across a gap the frames on either side stand for it, each
    for the half nearer to it.
    """
    times = timing.times
    if len(times) == 1:
        return np.zeros(count, dtype=np.int64)
    if times[0] == 0 and np.allclose(np.diff(times), times[-1] / (len(times) - 1), rtol=1e-9, atol=1e-12):
        # evenly spaced: the released rule itself, whose float noise decides exact half-way points
        # (259 frames, 29 samples: linspace puts 193.49999999999997 where time puts 193.5)
        return sample_indices(len(times), count)
    targets = np.linspace(0.0, float(times[-1]), count)
    positions = np.interp(targets, times, np.arange(len(times), dtype=np.float64))
    return np.round(np.round(positions, POSITION_DIGITS)).astype(np.int64)
