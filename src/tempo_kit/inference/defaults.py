"""Inference defaults, in a module without heavy imports so the command-line parsers load fast.

How a video is read (frames per second, frame counts, window, geometry) is the
:class:`~tempo_kit.video.reading.Sampling` record's; the decoding limit is :mod:`tempo_kit.generation`'s.
"""

from __future__ import annotations

from tempo_kit.moved import moved_names

#: Where the allocator's relevance comes from: the trained SVLM, or a base SVLM's prior.
RELEVANCE_SOURCES = ("trained", "base")


__getattr__ = moved_names(__name__)  # old names, see tempo_kit.moved
