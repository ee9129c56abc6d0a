"""What a file's container header and first frame say, before a backend opens it.

:func:`open_video` reads this to pick a backend (decord cannot open tiny frames; rotated phone
videos are decoded upright through PyAV) and to refuse images and audio-only files in one line.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

#: file endings that are images, not videos (a common mix-up when passing media by hand)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


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


def _probe_size(path: str) -> tuple[int, int] | None:
    """(height, width) of the first video stream from the container header, or ``None``."""
    try:
        import av

        with av.open(path) as container:
            context = container.streams.video[0].codec_context
            return (int(context.height), int(context.width)) if context.height and context.width else None
    except Exception:  # the decoder that opens the file next reports the real problem
        return None


def decord_available() -> bool:
    """Whether decord can be imported here."""
    return importlib.util.find_spec("decord") is not None
