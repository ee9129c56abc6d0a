"""The names a user picks for the video pipeline (recipe values, command-line choices).

They live apart from the modules that use them, without torch or a video decoder, so the
command-line parsers that list them as choices load in a fraction of a second.
"""

from __future__ import annotations

from typing import Literal

from tempo_kit.defaults import INFERENCE_WINDOW, TRAIN_WINDOW  # noqa: F401 (re-exported)

ResizeMode = Literal["decoder", "pil", "torch"]
RESIZE_MODES = ("pil", "decoder", "torch")
#: The exact path is the default: the released pixels, bit for bit.
DEFAULT_RESIZE: ResizeMode = "pil"

#: ``"processor"``: decode-time long-edge cap only, the compressor family's own processor does the
#: rest (each family declares the modes it takes: ``FamilyAdapter.preprocessing``).
Preprocessing = Literal["released", "qwen3_vl", "processor"]
PREPROCESSING_MODES: tuple[str, ...] = ("released", "qwen3_vl", "processor")
DEFAULT_PREPROCESSING: Preprocessing = "released"

#: Where time tags come from: the real sampling rate (released) or the container's timestamps.
TIME_BASES = ("released", "container")
TimeBase = Literal["released", "container"]
DEFAULT_TIME_BASE: TimeBase = "released"
