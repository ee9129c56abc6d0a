"""The ``"decord"`` video backend (the default, as in the paper): fast random access.

It can resize inside the decoder (FFmpeg's swscale, bicubic). Known issues (wrong frame after some
seeks, leaks with huge batches) are why frames are read in bounded chunks and why a reference
backend (``"pyav"``) exists.
"""

from __future__ import annotations

import numpy as np

from tempo_kit.errors import MediaError
from tempo_kit.video.probe import _probe_size
from tempo_kit.video.source import SizeRule, VideoSource, _check_indices, _reason, register_backend

#: decord fails to copy frames whose height or width is this many pixels or fewer; PyAV reads them.
DECORD_FAILING_SIDE = 16


@register_backend("decord")
class DecordSource(VideoSource):
    """Decord ``VideoReader``; resizing (if asked) happens in FFmpeg's scaler while decoding.

    The native frame size is read from the container header (PyAV) so that, given
    ``output_size``, the reader is opened once, already resizing (opening builds a frame index
    over the whole file, which costs about a second for a long 1080p video).
    """

    def __init__(self, path: str, output_size: SizeRule | None = None, num_threads: int = 0):
        import decord

        # FFmpeg's own log lines ("moov atom not found") duplicate the MediaError raised below
        decord.logging.set_level(decord.logging.FATAL)
        self.path = path
        self._num_threads = num_threads
        native = _probe_size(path)
        target = tuple(output_size(*native)) if (output_size and native) else None
        if target == native:
            target = None
        height, width = target if target is not None else (-1, -1)
        self._reader = decord.VideoReader(
            path, ctx=decord.cpu(0), width=width, height=height, num_threads=num_threads
        )
        self._reader_size: tuple[int, int] | None = target  # None: native
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())
        if native is None and self.num_frames > 0:  # no header size: decode the first frame
            native = tuple(int(x) for x in self._reader[0].shape[:2])
            self._reader.seek(0)
        self.height, self.width = native or (0, 0)

    def _reader_for(self, size: tuple[int, int] | None):
        import decord

        if size == (self.height, self.width):
            size = None
        if size != self._reader_size:
            del self._reader
            height, width = size if size is not None else (-1, -1)
            self._reader = decord.VideoReader(
                self.path, ctx=decord.cpu(0), width=width, height=height, num_threads=self._num_threads
            )
            self._reader_size = size
        return self._reader

    def iter_chunks(self, indices, size, chunk_size):
        _check_indices(self, indices)
        try:
            reader = self._reader_for(size)
            for start in range(0, len(indices), chunk_size):
                chunk = [int(i) for i in indices[start : start + chunk_size]]
                yield reader.get_batch(chunk).asnumpy()
        except MediaError:
            raise
        except Exception as error:
            raise MediaError(f"decord failed to decode {self.path}: {_reason(error)}") from error

    def stream_chunks(self, indices, size, chunk_size):
        """:meth:`iter_chunks`, rewinding after each batch: decord keeps decoded frames buffered
        after ``get_batch``, so over a long pass its memory grows with the video (peak 404 → 508 MB
        from 384 to 1536 frames, against 357 → 351 MB rewound: ``benchmarks/results/overlap_cpu.md``;
        decord issues #197, #208). Rewinding frees them; the next batch seeks to its key frame, which
        costs decode time where batches share a group of pictures."""
        for chunk in self.iter_chunks(indices, size, chunk_size):
            self._reader.seek(0)
            yield chunk

    def frame_times(self):
        """Each frame's start time from decord's own frame index (built when the reader opened),
        rounded to the microsecond: decord keeps them as float32 (14 s reads 13.9999996)."""
        try:
            starts = self._reader.get_frame_timestamp(np.arange(self.num_frames))[:, 0]
            return np.round(np.asarray(starts, dtype=np.float64), 6)
        except Exception:  # a container without timestamps: the packets say no more
            return super().frame_times()

    def close(self) -> None:
        self._reader = None
