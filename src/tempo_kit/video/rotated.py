"""Frames of a rotated phone video, turned upright as a player displays them."""

from __future__ import annotations

import numpy as np

from tempo_kit.video.source import VideoSource


class RotatedSource(VideoSource):
    """Frames of another source turned ``quarter_turns`` × 90° counter-clockwise, as displayed."""

    def __init__(self, inner: VideoSource, quarter_turns: int):
        self.inner, self.turns = inner, quarter_turns % 4
        self.path, self.num_frames, self.fps = inner.path, inner.num_frames, inner.fps
        sideways = self.turns % 2 == 1
        self.height, self.width = (inner.width, inner.height) if sideways else (inner.height, inner.width)

    def iter_chunks(self, indices, size, chunk_size):
        stored = size if size is None or self.turns % 2 == 0 else (size[1], size[0])
        for chunk in self.inner.iter_chunks(indices, stored, chunk_size):
            yield np.ascontiguousarray(np.rot90(chunk, self.turns, axes=(1, 2)))

    def frame_times(self):
        return self.inner.frame_times()

    def close(self) -> None:
        self.inner.close()
