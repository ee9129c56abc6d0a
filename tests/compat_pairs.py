"""The pairs of the compatibility matrix and what each check runs on: shared by
``test_compat_matrix.py`` and the two-process FSDP2 worker (``compat_fsdp_worker.py``).

Rows: every decoder family of ``LLM_WRITERS`` with the default compressor, and every compressor
family of ``SVLM_WRITERS`` with the default decoder (the default pair once).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.tiny import DEFAULT_LLM, DEFAULT_SVLM
from tempo_kit.tiny.llm_families import LLM_WRITERS
from tempo_kit.tiny.svlm_families import SVLM_WRITERS
from tempo_kit.types import IGNORE_INDEX, TempoBatch

K_MAX = 8
BUDGET = 20
#: LoRA on the decoder, on the family's own projections (Phi-3's fused ones included).
DECODER_LORA = {"module": "model", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": "family"}


def pairs() -> list[tuple[str, str]]:
    """``(svlm family, llm family)`` of every row, the default pair first."""
    rows = [(DEFAULT_SVLM, DEFAULT_LLM)]
    rows += [(DEFAULT_SVLM, llm) for llm in LLM_WRITERS if llm != DEFAULT_LLM]
    rows += [(svlm, DEFAULT_LLM) for svlm in SVLM_WRITERS if svlm != DEFAULT_SVLM]
    return rows


def pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}+{pair[1]}"


def write_pair(root: Path, pair: tuple[str, str], shared: dict[str, Path]) -> dict[str, Path]:
    """Tiny checkpoints of ``pair`` under ``root``, reusing ``shared`` (the default pair's) where it can."""
    from tempo_kit.tiny.tokenizer import build_tokenizer

    svlm, llm = pair
    out = root / pair_id(pair)
    return {
        "svlm": shared["svlm"] if svlm == DEFAULT_SVLM else SVLM_WRITERS[svlm](out / "svlm", build_tokenizer(), seed=0),
        "llm": shared["llm"] if llm == DEFAULT_LLM else LLM_WRITERS[llm](out / "llm", None, seed=1),
    }


def model_config(paths: dict[str, Path], compressor: str) -> dict:
    return {
        "compressor": {"name": compressor, "pretrained": str(paths["svlm"]), "k_max": K_MAX},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"])},
        "budget": BUDGET,
    }


def frames(seed: int, count: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 64, 96, 3), generator=generator, dtype=torch.uint8)


def train_batch(tokenizer) -> TempoBatch:
    """Two videos of two segments each, one question and answer each, assistant-only labels."""
    from tempo_kit.video import make_segments

    samples = [(frames(1), "What colour is the circle?", "Red"), (frames(2), "When does it move?", "At 2.0 seconds")]
    encoded = [
        encode_decoder_prompt(tokenizer, [Turn("user", q), Turn("assistant", a)], has_visual=True) for _, q, a in samples
    ]
    length = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(samples), length), pad)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    mask = torch.zeros_like(input_ids)
    for row, (ids, lab) in enumerate(encoded):
        input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, lab, 1
    return TempoBatch(
        segments=[make_segments(f, 4) for f, _, _ in samples],
        queries=[q for _, q, _ in samples],
        input_ids=input_ids,
        labels=labels,
        attention_mask=mask,
        ids=["0", "1"],
    )
