"""Tiny real checkpoints (Qwen3-VL SVLM, Qwen3 LLM, tokenizer) written in the Hugging Face layout.

They are what the tests, the CPU demo and the docs examples load, through the same
``from_pretrained`` path a downloaded Qwen3-VL-2B-Instruct / Qwen3-4B takes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tempo_kit.tiny.qwen3 import save_tiny_qwen3
from tempo_kit.tiny.qwen3_vl import save_tiny_qwen3_vl
from tempo_kit.tiny.tokenizer import build_tokenizer

__all__ = ["PREPARED_TINY_ENV", "make_tiny", "prepared_or_make_tiny"]

#: Names a folder holding ready tiny ``svlm/`` and ``llm/`` checkpoints (tests build them once).
PREPARED_TINY_ENV = "TEMPO_KIT_TINY_DIR"


def make_tiny(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``out_dir/svlm`` (tiny Qwen3-VL) and ``out_dir/llm`` (tiny Qwen3), deterministic in ``seed``.

    Both share one tiny tokenizer with Qwen's special tokens and chat template. Returns
    ``{"svlm": Path, "llm": Path}``.
    """
    out = Path(out_dir)
    tokenizer = build_tokenizer()
    svlm = save_tiny_qwen3_vl(out / "svlm", tokenizer, seed=seed)
    llm = save_tiny_qwen3(out / "llm", tokenizer, seed=seed + 1)
    return {"svlm": svlm, "llm": llm}


def prepared_or_make_tiny(out_dir: str | Path | None = None) -> dict[str, Path]:
    """The tiny pair in ``$TEMPO_KIT_TINY_DIR`` when it is set, else :func:`make_tiny` into
    ``out_dir`` (default: a new temporary folder). The examples start this way."""
    prepared = os.environ.get(PREPARED_TINY_ENV)
    if prepared:
        return {"svlm": Path(prepared) / "svlm", "llm": Path(prepared) / "llm"}
    return make_tiny(out_dir if out_dir is not None else tempfile.mkdtemp(prefix="tempo-tiny-"))
