"""Inference defaults, in a module without heavy imports so the command-line parsers load fast.

How a video is read (frames per second, frame counts, window, geometry) is the
:class:`~tempo_kit.video.reading.Sampling` record's; the decoding limit is :mod:`tempo_kit.generation`'s.
"""

from __future__ import annotations

#: The LLM context cap the released inference script and demo app pass (compatibility §4).
DEFAULT_INFER_MAX_CONTEXT = 16384
#: Where the allocator's relevance comes from: the trained SVLM, or a base SVLM's prior.
RELEVANCE_SOURCES = ("trained", "base")
