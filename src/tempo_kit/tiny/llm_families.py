"""The tiny decoder checkpoints ``make-tiny --llm`` writes: family → writer.

Each writer is ``(out_dir, tokenizer=None, seed=0) -> Path``; without a tokenizer it builds the
family's own (its special tokens and chat template). ``smollm2`` is the ``llama`` architecture with
SmolLM2's ChatML tokenizer and tied head; ``llama`` is Llama 3.x's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tempo_kit.tiny.gemma3 import save_tiny_gemma3
from tempo_kit.tiny.llama import save_tiny_llama, save_tiny_smollm2
from tempo_kit.tiny.mistral import save_tiny_mistral
from tempo_kit.tiny.phi3 import save_tiny_phi3
from tempo_kit.tiny.qwen2 import save_tiny_qwen2
from tempo_kit.tiny.qwen3 import save_tiny_qwen3

LLM_WRITERS: dict[str, Callable[..., Path]] = {
    "qwen3": save_tiny_qwen3,
    "qwen2": save_tiny_qwen2,
    "llama": save_tiny_llama,
    "smollm2": save_tiny_smollm2,
    "gemma3": save_tiny_gemma3,
    "mistral": save_tiny_mistral,
    "phi3": save_tiny_phi3,
}
