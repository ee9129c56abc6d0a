"""The ``"pyav"`` video backend: the reference for which frame index ``i`` is.

It decodes the stream sequentially from the start and counts frames in presentation order, so
frame ``i`` is exactly the ``i``-th decoded frame: slower on long videos, but no seeking can pick a
wrong frame. Resizing uses the same swscale bicubic filter as decord.
"""

from __future__ import annotations

import numpy as np

from tempo_kit.errors import MediaError
from tempo_kit.video.source import SizeRule, VideoSource, _check_indices, _reason, register_backend


@register_backend("pyav")
class PyAVSource(VideoSource):
    """PyAV (FFmpeg) sequential decoder: the reference for which frame index ``i`` is."""

    def __init__(self, path: str, output_size: SizeRule | None = None):  # resizes per frame anyway
        import av

        self.path = path
        self._container = av.open(path)
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{path} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # before the codec opens: it cannot change afterwards
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else float("nan")
        self.height = int(stream.codec_context.height)
        self.width = int(stream.codec_context.width)
        self.num_frames = int(stream.frames) or self._count_packets()

    def _count_packets(self) -> int:
        """Frame count for containers that do not store it (WebM, MKV): count video packets."""
        count = sum(1 for packet in self._container.demux(video=0) if packet.size)
        self._container.seek(0)
        return count

    def iter_chunks(self, indices, size, chunk_size):
        _check_indices(self, indices)
        wanted = sorted(set(int(i) for i in indices))
        if list(indices) != wanted:
            raise ValueError("PyAVSource.iter_chunks needs sorted, unique indices")
        if not wanted:
            return
        stream = self._container.streams.video[0]
        height, width = size if size is not None else (self.height, self.width)
        chunk: list[np.ndarray] = []
        position, next_wanted = 0, 0
        try:
            self._container.seek(0)
            for frame in self._container.decode(stream):
                if position == wanted[next_wanted]:
                    chunk.append(
                        frame.reformat(
                            width=width, height=height, format="rgb24", interpolation="BICUBIC"
                        ).to_ndarray()
                    )
                    next_wanted += 1
                    if len(chunk) == chunk_size:
                        yield np.stack(chunk)
                        chunk = []
                position += 1
                if next_wanted == len(wanted):
                    break
        except Exception as error:
            raise MediaError(
                f"PyAV failed to decode {self.path} at frame {position}: {_reason(error)}"
            ) from error
        if next_wanted < len(wanted):
            raise MediaError(
                f"video {self.path} ended after {position} decodable frames but frame {wanted[next_wanted]} "
                f"was requested (the container claims {self.num_frames}); the file is truncated or corrupt"
            )
        if chunk:
            yield np.stack(chunk)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
