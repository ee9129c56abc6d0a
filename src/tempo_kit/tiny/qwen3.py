"""A tiny Qwen3 causal LM (the global LLM) in the Hugging Face checkpoint layout.

Same architecture switches as Qwen3-4B (tied embeddings, q/k norms, grouped-query attention,
rope theta 1e6); a different width from the tiny SVLM so projector shapes are exercised.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.checkpoint import save_checkpoint, special_token_ids

#: Architecture switches of Qwen3-4B, shared by the tiny LLM and the real-shape one.
QWEN3_SWITCHES = {
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "initializer_range": 0.02,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": True,
}

#: Sizes of the tiny LLM (Qwen3-4B values in the comments).
TINY_LLM = {
    "hidden_size": 48,  # 2560
    "intermediate_size": 96,  # 9728
    "num_hidden_layers": 2,  # 36
    "num_attention_heads": 4,  # 32
    "num_key_value_heads": 2,  # 8
    "head_dim": 16,  # 128
    **QWEN3_SWITCHES,
}


def qwen3_config(sizes: dict, tokenizer, vocab_size: int):
    """A ``Qwen3Config`` of ``sizes`` with the special-token ids of ``tokenizer``."""
    from transformers import Qwen3Config

    ids = special_token_ids(tokenizer, ("<|endoftext|>", "<|im_end|>"))
    return Qwen3Config(
        **sizes,
        vocab_size=vocab_size,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_qwen3_config(tokenizer):
    """A ``Qwen3Config`` sized by :data:`TINY_LLM`, vocab = the tokenizer's length."""
    return qwen3_config(TINY_LLM, tokenizer, len(tokenizer))


def save_tiny_qwen3(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``Qwen3ForCausalLM`` and the tokenizer (default: the kit's
    tiny Qwen tokenizer) into ``out_dir``."""
    import torch
    from transformers import Qwen3ForCausalLM

    from tempo_kit.tiny.tokenizer import build_tokenizer

    tokenizer = tokenizer or build_tokenizer()
    config = tiny_qwen3_config(tokenizer)
    torch.manual_seed(seed)
    return save_checkpoint(Qwen3ForCausalLM(config).eval(), tokenizer, out_dir)
