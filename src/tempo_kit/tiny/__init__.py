"""Tiny real checkpoints (Qwen3-VL SVLM, Qwen3 LLM, tokenizer) written in the Hugging Face layout.

They are what the tests, the CPU demo and the docs examples load, through the same
``from_pretrained`` path a downloaded Qwen3-VL-2B-Instruct / Qwen3-4B takes.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.qwen3 import save_tiny_qwen3
from tempo_kit.tiny.qwen3_vl import save_tiny_qwen3_vl
from tempo_kit.tiny.tokenizer import build_tokenizer

__all__ = ["make_tiny"]


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
