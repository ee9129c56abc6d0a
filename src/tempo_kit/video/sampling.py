"""Which frames to take from a video and what size to make them (compatibility §1).

These are pure functions of the video's metadata, so they are exact and testable without decoding:

* :func:`num_sampled_frames`: ``round(duration × fps)`` clamped to ``[min_frames, max_frames]``;
* :func:`sample_indices`: ``round(linspace(0, total_frames − 1, n))``; past ``max_frames`` this is
  the uniform subsampling the paper describes;
* :func:`resized_size`: long edge at most ``max_long_edge``, aspect kept, each side rounded to a
  multiple of ``size_multiple`` — the decode size of the ``qwen3_vl`` geometry (the released
  geometry lives in :mod:`~tempo_kit.video.preprocessing`).

Rounding is NumPy's (half to even), the same as Python's :func:`round`; it matters only on exact
halves (e.g. a 2.25 s video → 4.5 → 4 frames).
"""

from __future__ import annotations

import math

import numpy as np

from tempo_kit.defaults import (  # noqa: F401 (re-exported)
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_LONG_EDGE,
    DEFAULT_MIN_FRAMES,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_SIZE_MULTIPLE,
)


def num_sampled_frames(
    duration: float,
    fps: float = DEFAULT_SAMPLE_FPS,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> int:
    """``round(duration × fps)`` clamped to ``[min_frames, max_frames]``."""
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a finite number ≥ 0 seconds, got {duration}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"sampling fps must be a finite number > 0, got {fps}")
    if not 1 <= min_frames <= max_frames:
        raise ValueError(
            f"need 1 ≤ min_frames ≤ max_frames, got min_frames={min_frames}, max_frames={max_frames}"
        )
    return int(min(max(round(duration * fps), min_frames), max_frames))


def sample_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """``round(linspace(0, total_frames − 1, num_frames))`` as int64.

    When ``num_frames > total_frames`` (e.g. a 1-frame video still gives ``min_frames`` frames) the
    indices repeat; the clip then holds repeated frames, as the released implementation does.
    """
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame, got total_frames={total_frames}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be ≥ 1, got {num_frames}")
    return np.round(np.linspace(0, total_frames - 1, num_frames)).astype(np.int64)


def resized_size(
    height: int,
    width: int,
    max_long_edge: int | None = DEFAULT_MAX_LONG_EDGE,
    size_multiple: int = DEFAULT_SIZE_MULTIPLE,
) -> tuple[int, int]:
    """``(height, width)`` at decode time in the ``qwen3_vl`` geometry.

    The frame is scaled (never enlarged) so its long edge is at most ``max_long_edge`` (``None``:
    keep the native size), then each side is rounded to the nearest multiple of ``size_multiple``
    (at least one multiple). Rounding can move the aspect ratio by at most half a multiple per side.
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if size_multiple < 1:
        raise ValueError(f"size_multiple must be ≥ 1, got {size_multiple}")
    scale = 1.0
    if max_long_edge is not None:
        if max_long_edge < size_multiple:
            raise ValueError(f"max_long_edge ({max_long_edge}) must be ≥ size_multiple ({size_multiple})")
        scale = min(1.0, max_long_edge / max(height, width))

    def side(x: int) -> int:
        rounded = max(size_multiple, int(round(x * scale / size_multiple)) * size_multiple)
        if max_long_edge is not None and rounded > max_long_edge:  # a cap that is not a multiple
            rounded = max(size_multiple, rounded - size_multiple)
        return rounded

    return side(height), side(width)
