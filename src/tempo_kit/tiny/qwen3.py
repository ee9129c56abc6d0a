"""A tiny Qwen3 causal LM (the global LLM) in the Hugging Face checkpoint layout.

Same architecture switches as Qwen3-4B (tied embeddings, q/k norms, grouped-query attention,
rope theta 1e6); a different width from the tiny SVLM so projector shapes are exercised.
"""

from __future__ import annotations

from pathlib import Path

#: Sizes of the tiny LLM (Qwen3-4B values in the comments).
TINY_LLM = {
    "hidden_size": 48,  # 2560
    "intermediate_size": 96,  # 9728
    "num_hidden_layers": 2,  # 36
    "num_attention_heads": 4,  # 32
    "num_key_value_heads": 2,  # 8
    "head_dim": 16,  # 128
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "initializer_range": 0.02,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": True,
}


def tiny_qwen3_config(tokenizer):
    """A ``Qwen3Config`` sized by :data:`TINY_LLM`, vocab = the tokenizer's length."""
    from transformers import Qwen3Config

    return Qwen3Config(
        **TINY_LLM,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )


def save_tiny_qwen3(out_dir: str | Path, tokenizer, seed: int = 0) -> Path:
    """Write a randomly initialised tiny ``Qwen3ForCausalLM`` and the tokenizer into ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Qwen3ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = tiny_qwen3_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[config.eos_token_id, config.bos_token_id],
        pad_token_id=config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
