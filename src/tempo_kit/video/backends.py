"""Open a video with a named backend: the one entry point, its fallbacks and its metadata checks.

The backends, one file each, behind the :class:`~tempo_kit.video.source.VideoSource` interface:

* ``"decord"`` (default, as in the paper; :mod:`~tempo_kit.video.decord_source`): fast random
  access, resizing inside the decoder.
* ``"pyav"`` (:mod:`~tempo_kit.video.pyav_source`): the reference, decoding sequentially so frame
  ``i`` is exactly the ``i``-th frame.
* ``"torchcodec"``: PyTorch's own decoder, on CPU or CUDA (:mod:`tempo_kit.video.torchcodec_source`);
  where it cannot load (its wheels need a CUDA build of torch and FFmpeg's shared libraries) it
  gives way to decord, saying so once.

Register another backend with :func:`register_backend` (the
:data:`~tempo_kit.registry.VIDEO_BACKENDS` registry; a package can also name it in the entry-point
group ``tempo_kit.video_backends``); ``load_video(..., backend="name")`` then uses it.

Where decord is not installed (it has no wheels for ARM: Apple Silicon, GH200) or cannot open a
file PyAV can (clips of 16 px or less), ``"decord"`` falls back to ``"pyav"``, saying so once.
A file with audio but no video stream is reported as such, not as a corrupt video; a rotated
phone video is decoded upright (:mod:`~tempo_kit.video.rotated`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from tempo_kit.defaults import DEFAULT_BACKEND
from tempo_kit.errors import MediaError
from tempo_kit.registry import VIDEO_BACKENDS

# the interface and the built-in backends (importing them registers them); their names are
# importable from here as before the backends had files of their own
from tempo_kit.video import torchcodec_source  # noqa: F401
from tempo_kit.video.decord_source import DECORD_FAILING_SIDE, DecordSource  # noqa: F401
from tempo_kit.video.probe import IMAGE_SUFFIXES, Probe, _probe_size, decord_available, probe_file  # noqa: F401
from tempo_kit.video.pyav_source import PyAVSource
from tempo_kit.video.rotated import RotatedSource
from tempo_kit.video.source import SizeRule, VideoSource, _check_indices, _reason, register_backend  # noqa: F401

logger = logging.getLogger("tempo_kit.video")

#: A container fps above this is treated as corrupt metadata (real cameras top out near 1000 fps).
MAX_PLAUSIBLE_FPS = 1000.0


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


def _open_fix(path: str, backend: str) -> str:
    """What to do about a file the decoder cannot open: an image, or a corrupt/truncated video."""
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return "it looks like an image: give images as an annotation row's 'image' field (load_image), not as a video"
    other = "pyav" if backend == "decord" else "decord"
    return (
        "the file is corrupt, truncated or not a video; re-encode it "
        f"(ffmpeg -i {path} -c:v libx264 fixed.mp4) or try --backend {other}"
    )
