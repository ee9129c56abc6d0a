"""The tiny checkpoint writer of each compressor family: ``(out_dir, tokenizer, seed=0) -> Path``.

One entry per family registered as a compressor, named as its compressor; ``tempo-kit make-tiny
--svlm FAMILY`` and the compressor contract test read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tempo_kit.tiny.internvl import save_tiny_internvl
from tempo_kit.tiny.llava_onevision import save_tiny_llava_onevision
from tempo_kit.tiny.qwen2_5_vl import save_tiny_qwen2_5_vl
from tempo_kit.tiny.qwen3_vl import save_tiny_qwen3_vl
from tempo_kit.tiny.smolvlm import save_tiny_smolvlm

SVLM_WRITERS: dict[str, Callable[..., Path]] = {
    "qwen3_vl": save_tiny_qwen3_vl,
    "qwen2_5_vl": save_tiny_qwen2_5_vl,
    "smolvlm": save_tiny_smolvlm,
    "internvl": save_tiny_internvl,
    "llava_onevision": save_tiny_llava_onevision,
}
