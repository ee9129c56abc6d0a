"""The interface every video backend implements: :class:`VideoSource`, and how one is registered.

A backend opens a file into a :class:`VideoSource` that reports the container's frame count, fps
and frame size, yields requested frames **in chunks** (optionally resized while decoding, so a
caller never holds the whole full-resolution video), and says when each frame is presented
(:meth:`VideoSource.frame_times`, what variable-frame-rate videos need).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from tempo_kit.errors import MediaError
from tempo_kit.registry import VIDEO_BACKENDS

#: ``(height, width) -> (height', width')``: the size frames will be asked for, known at open time
#: so a backend that resizes inside its decoder can set that up once.
SizeRule = Callable[[int, int], tuple[int, int]]


class VideoSource(ABC):
    """An opened video: metadata plus chunked frame access. Use as a context manager."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int

    @abstractmethod
    def iter_chunks(
        self, indices: Sequence[int], size: tuple[int, int] | None, chunk_size: int
    ) -> Iterator[np.ndarray]:
        """Yield uint8 ``[n, H, W, 3]`` RGB chunks of the frames at sorted ``indices``, in order.

        ``size=(H, W)`` resizes while decoding (bicubic); ``None`` keeps the native size.
        Chunks hold at most ``chunk_size`` frames.
        """

    def stream_chunks(
        self, indices: Sequence[int], size: tuple[int, int] | None, chunk_size: int
    ) -> Iterator[np.ndarray]:
        """As :meth:`iter_chunks`, for one pass over a whole video whose host memory must stay
        bounded by a chunk (the overlapped pipeline). A backend that buffers decoded frames across
        batches overrides this to release them; by default it is :meth:`iter_chunks`."""
        return self.iter_chunks(indices, size, chunk_size)

    def frame_times(self) -> np.ndarray | None:
        """float64 ``[num_frames]``: each frame's presentation time in seconds, in frame-index order,
        or ``None`` where the container gives no usable timestamps.

        By default read from the container's packets (:func:`~tempo_kit.video.frame_times.packet_times`,
        no decoding); a backend whose decoder already indexed the times overrides this.
        """
        from tempo_kit.video.frame_times import packet_times

        return packet_times(self.path, self.num_frames)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release decoder resources."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def register_backend(name: str) -> Callable:
    """Decorator registering ``factory(path, output_size: SizeRule | None = None) -> VideoSource``."""
    return VIDEO_BACKENDS.register(name)


_LOG_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def _reason(error: Exception) -> str:
    """One readable line: the exception type and message without decord's log-location prefixes."""
    lines = str(error).strip().splitlines()
    text = _LOG_PREFIX.sub("", lines[0] if lines else "")
    return f"{type(error).__name__}: {text}"[:300]


def _check_indices(source: VideoSource, indices: Sequence[int]) -> None:
    if len(indices) and (min(indices) < 0 or max(indices) >= source.num_frames):
        raise MediaError(
            f"frame indices {min(indices)}..{max(indices)} out of range for {source.path} "
            f"({source.num_frames} frames)"
        )
