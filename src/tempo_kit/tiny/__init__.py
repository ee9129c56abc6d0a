"""Tiny real checkpoints (an SVLM, an LLM, their tokenizers) written in the Hugging Face layout.

They are what the tests, the CPU demo and the docs examples load, through the same
``from_pretrained`` path a downloaded Qwen3-VL-2B-Instruct / Qwen3-4B (or another supported pair)
takes. The families each side can be are the keys of
:data:`~tempo_kit.tiny.svlm_families.SVLM_WRITERS` and :data:`~tempo_kit.tiny.llm_families.LLM_WRITERS`.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.errors import ConfigError

__all__ = ["DEFAULT_LLM", "DEFAULT_SVLM", "make_tiny"]

#: The pair ``make-tiny`` writes by default (the released Tempo's families).
DEFAULT_SVLM = "qwen3_vl"
DEFAULT_LLM = "qwen3"


def make_tiny(out_dir: str | Path, seed: int = 0, svlm: str = DEFAULT_SVLM, llm: str = DEFAULT_LLM) -> dict[str, Path]:
    """Write ``out_dir/svlm`` (tiny SVLM of family ``svlm``) and ``out_dir/llm`` (tiny decoder of
    family ``llm``), deterministic in ``seed``. Returns ``{"svlm": Path, "llm": Path}``.

    The SVLM gets the kit's tiny Qwen tokenizer (Qwen special tokens, ChatML); the decoder gets its
    family's own tokenizer (the same Qwen one for ``qwen3`` and ``qwen2``). An unknown family is
    refused, naming those there are, before anything is written.
    """
    from tempo_kit.tiny.llm_families import LLM_WRITERS
    from tempo_kit.tiny.svlm_families import SVLM_WRITERS
    from tempo_kit.tiny.tokenizer import build_tokenizer

    for side, name, writers in (("svlm", svlm, SVLM_WRITERS), ("llm", llm, LLM_WRITERS)):
        if name not in writers:
            raise ConfigError(f"make-tiny --{side} {name!r}: no tiny {side} of that family; choose one of {', '.join(writers)}")
    out = Path(out_dir)
    svlm_path = SVLM_WRITERS[svlm](out / "svlm", build_tokenizer(), seed=seed)
    llm_path = LLM_WRITERS[llm](out / "llm", None, seed=seed + 1)
    return {"svlm": svlm_path, "llm": llm_path}
