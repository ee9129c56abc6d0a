"""Video decoding backends behind one small interface.

A backend opens a file into a :class:`VideoSource` that reports the container's frame count, fps
and frame size, and yields requested frames **in chunks**, optionally resized while decoding, so a
caller never holds the whole full-resolution video.

* ``"decord"`` (default, as in the paper): fast random access. It can resize inside the decoder
  (FFmpeg's swscale, bicubic). Known issues (wrong frame after some seeks, leaks with huge batches)
  are why frames are read in bounded chunks and why a reference backend exists.
* ``"pyav"``: the reference. It decodes the stream sequentially from the start and counts frames in
  presentation order, so frame ``i`` is exactly the ``i``-th decoded frame: slower on long videos,
  but no seeking can pick a wrong frame. Resizing uses the same swscale bicubic filter.

* ``"torchcodec"``: PyTorch's own decoder, on CPU or CUDA (:mod:`tempo_kit.video.torchcodec_source`);
  where it cannot load (its wheels need a CUDA build of torch and FFmpeg's shared libraries) it
  gives way to decord, saying so once.

Register another backend with :func:`register_backend` (the
:data:`~tempo_kit.registry.VIDEO_BACKENDS` registry; a package can also name it in the entry-point
group ``tempo_kit.video_backends``); ``load_video(..., backend="name")`` then uses it.

Where decord is not installed (it has no wheels for ARM: Apple Silicon, GH200) or cannot open a
file PyAV can (clips of 16 px or less), ``"decord"`` falls back to ``"pyav"``, saying so once.
A file with audio but no video stream is reported as such, not as a corrupt video.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tempo_kit.defaults import DEFAULT_BACKEND
from tempo_kit.errors import MediaError
from tempo_kit.registry import VIDEO_BACKENDS

logger = logging.getLogger("tempo_kit.video")

#: decord fails to copy frames whose height or width is this many pixels or fewer; PyAV reads them.
DECORD_FAILING_SIDE = 16

#: A container fps above this is treated as corrupt metadata (real cameras top out near 1000 fps).
MAX_PLAUSIBLE_FPS = 1000.0


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release decoder resources."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: ``(height, width) -> (height', width')``: the size frames will be asked for, known at open time
#: so a backend that resizes inside its decoder can set that up once.
SizeRule = Callable[[int, int], tuple[int, int]]


def register_backend(name: str) -> Callable:
    """Decorator registering ``factory(path, output_size: SizeRule | None = None) -> VideoSource``."""
    return VIDEO_BACKENDS.register(name)


def open_video(path: str | Path, backend: str = DEFAULT_BACKEND, output_size: SizeRule | None = None) -> VideoSource:
    """Open ``path`` with the named backend and check its metadata.

    ``output_size`` tells the backend the size rule frames will be read at (optional).

    Raises:
        MediaError: the file is missing or unreadable, has no frames, or reports an impossible fps.
    """
    path = str(path)
    VIDEO_BACKENDS.get(backend)  # an unknown name fails here, before any file is read, with a did-you-mean
    if not Path(path).is_file():
        raise MediaError(f"video file not found: {path} (check the path and the media root)")
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:  # PyAV would open it as a one-frame "video"
        raise MediaError(f"cannot open video {path}: {_open_fix(path, backend)}")
    probe = probe_file(path)
    if probe.has_audio and not probe.has_video:  # no re-encoding advice can make it a video
        raise MediaError(f"{path} holds audio only, no video stream; pass a video file")
    if backend.startswith("torchcodec"):
        from tempo_kit.video.torchcodec_source import usable_backend

        backend = usable_backend(backend)
    if backend == "decord" and not decord_available():
        _note_once("decord is not installed (it has no build for this platform): decoding with PyAV")
        backend = "pyav"
    if backend == "decord" and probe.size is not None and min(probe.size) <= DECORD_FAILING_SIDE:
        logger.info("%s is %dx%d px, too small for decord: decoding it with PyAV", path, *probe.size[::-1])
        backend = "pyav"
    if probe.quarter_turns:  # phone videos: decode upright through PyAV, then turn as the player would
        logger.info("%s is displayed rotated by %d°: decoding with PyAV and turning it", path, 90 * probe.quarter_turns)
        source = RotatedSource(PyAVSource(path), probe.quarter_turns)
        check_metadata(source)
        return source
    try:
        factory = VIDEO_BACKENDS.get(backend)  # decord may have given way to pyav above
        source = factory(path) if output_size is None else factory(path, output_size)
    except MediaError:
        raise
    except Exception as error:  # decoders raise many types; all mean "cannot open this file"
        if backend == "decord":  # e.g. clips of 16 px or less: FFmpeg through PyAV still reads them
            try:
                source = PyAVSource(path)
            except Exception:
                pass
            else:
                logger.info("decord cannot open %s (%s); decoding it with PyAV", path, _reason(error))
                check_metadata(source)
                return source
        raise MediaError(
            f"cannot open video {path} with {backend}: {_reason(error)}; {_open_fix(path, backend)}"
        ) from error
    check_metadata(source)
    return source


_NOTED: set[str] = set()


def _note_once(message: str) -> None:
    if message not in _NOTED:
        _NOTED.add(message)
        logger.warning(message)


def decord_available() -> bool:
    """Whether decord can be imported here."""
    import importlib.util

    return importlib.util.find_spec("decord") is not None


@dataclass(frozen=True)
class Probe:
    """What the container header and first frame say about a file, before a backend opens it.

    Attributes:
        has_video / has_audio: the streams present.
        size: ``(height, width)`` as stored, or ``None``.
        quarter_turns: counter-clockwise quarter turns a player applies for display (the
            display matrix of phone videos): 0 to 3.
    """

    has_video: bool = True
    has_audio: bool = False
    size: tuple[int, int] | None = None
    quarter_turns: int = 0


def probe_file(path: str) -> Probe:
    """:class:`Probe` of ``path`` through PyAV; a file PyAV cannot read gives the defaults (the
    backend that opens it next reports the real problem)."""
    try:
        import av

        with av.open(path) as container:
            if not container.streams.video:
                return Probe(False, bool(container.streams.audio))
            stream = container.streams.video[0]
            context = stream.codec_context
            size = (int(context.height), int(context.width)) if context.height and context.width else None
            first = next(container.decode(stream), None)
            rotation = float(getattr(first, "rotation", 0) or 0)
            return Probe(True, bool(container.streams.audio), size, round(rotation / 90) % 4)
    except Exception:
        return Probe()


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

    def close(self) -> None:
        self.inner.close()


def check_metadata(source: VideoSource) -> None:
    """Reject 0-frame videos and missing, NaN or absurd fps, naming the file and the fix."""
    if source.num_frames < 1:
        source.close()
        raise MediaError(f"video {source.path} has 0 frames; the file is empty or not a video")
    fps = source.fps
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= MAX_PLAUSIBLE_FPS):
        source.close()
        raise MediaError(
            f"video {source.path} reports fps={fps}, which cannot give frame times; re-mux it with a "
            f"valid frame rate (0 < fps ≤ {MAX_PLAUSIBLE_FPS:g})"
        )
    if source.height < 1 or source.width < 1:
        source.close()
        raise MediaError(f"video {source.path} reports frame size {source.height}x{source.width}")


#: file endings that are images, not videos (a common mix-up when passing media by hand)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def _open_fix(path: str, backend: str) -> str:
    """What to do about a file the decoder cannot open: an image, or a corrupt/truncated video."""
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return "it looks like an image: give images as an annotation row's 'image' field (load_image), not as a video"
    other = "pyav" if backend == "decord" else "decord"
    return (
        "the file is corrupt, truncated or not a video; re-encode it "
        f"(ffmpeg -i {path} -c:v libx264 fixed.mp4) or try --backend {other}"
    )


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

    def close(self) -> None:
        self._reader = None


def _probe_size(path: str) -> tuple[int, int] | None:
    """(height, width) of the first video stream from the container header, or ``None``."""
    try:
        import av

        with av.open(path) as container:
            context = container.streams.video[0].codec_context
            return (int(context.height), int(context.width)) if context.height and context.width else None
    except Exception:  # the decoder that opens the file next reports the real problem
        return None


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


# the torchcodec backend registers itself; imported last, as it builds on the classes above
from tempo_kit.video import torchcodec_source  # noqa: E402, F401
