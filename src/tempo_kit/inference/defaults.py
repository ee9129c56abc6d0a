"""Inference defaults, in a module without heavy imports so the command-line parsers load fast."""

from __future__ import annotations

from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.video.options import INFERENCE_WINDOW
from tempo_kit.video.sampling import DEFAULT_MAX_FRAMES as VIDEO_MAX_FRAMES
from tempo_kit.video.sampling import DEFAULT_MIN_FRAMES, DEFAULT_SAMPLE_FPS

#: Frames per segment at inference (compatibility §1).
DEFAULT_WINDOW = INFERENCE_WINDOW
#: Frames sampled per second of video (compatibility §1).
DEFAULT_FPS = DEFAULT_SAMPLE_FPS
#: Most frames sampled from one video (compatibility §1; the paper's scaling run uses 2048).
DEFAULT_MAX_FRAMES = VIDEO_MAX_FRAMES
#: Fewest frames sampled per video by the released inference script and demo app (compatibility §1).
DEFAULT_INFER_MIN_FRAMES = DEFAULT_MIN_FRAMES
#: The LLM context cap the released inference script and demo app pass (compatibility §4).
DEFAULT_INFER_MAX_CONTEXT = 16384
#: Where the allocator's relevance comes from: the trained SVLM, or a base SVLM's prior.
RELEVANCE_SOURCES = ("trained", "base")

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_INFER_MAX_CONTEXT",
    "DEFAULT_INFER_MIN_FRAMES",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_WINDOW",
    "RELEVANCE_SOURCES",
]
