"""The tiny SVLM (compressor) checkpoints ``make-tiny --svlm`` writes: family → writer.

Each writer is ``(out_dir, tokenizer, seed=0) -> Path``, the family's name being its compressor's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tempo_kit.tiny.qwen3_vl import save_tiny_qwen3_vl

SVLM_WRITERS: dict[str, Callable[..., Path]] = {"qwen3_vl": save_tiny_qwen3_vl}
