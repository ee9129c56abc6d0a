"""A tiny Qwen2.5 decoder (``Qwen2ForCausalLM``: q/k/v biases, tied head as in Qwen2.5-0.5B … 3B, ChatML)."""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_tokenizer


def save_tiny_qwen2(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tokenizer or build_tokenizer()
    ids = special_ids(tokenizer)
    ids["bos_token_id"] = int(tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    config = Qwen2Config(**TINY_DECODER_SIZES, vocab_size=len(tokenizer), tie_word_embeddings=True, **ids)
    return save_tiny_causal_lm(Qwen2ForCausalLM, config, tokenizer, out_dir, seed, ("<|im_end|>", "<|endoftext|>"))
