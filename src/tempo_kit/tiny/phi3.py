"""A tiny Phi-3 decoder (``Phi3ForCausalLM``: fused ``qkv_proj`` / ``gate_up_proj``, untied head)."""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_family_tokenizer

PHI3_SPECIAL_TOKENS = ["<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

#: Phi-3.5-mini-instruct's template.
PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def build_phi3_tokenizer():
    return build_family_tokenizer(
        PHI3_SPECIAL_TOKENS, PHI3_TEMPLATE, bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>"
    )


def save_tiny_phi3(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    from transformers import Phi3Config, Phi3ForCausalLM

    tokenizer = tokenizer or build_phi3_tokenizer()
    sizes = {k: v for k, v in TINY_DECODER_SIZES.items() if k != "head_dim"}  # Phi-3 derives it
    config = Phi3Config(**sizes, vocab_size=len(tokenizer), tie_word_embeddings=False, **special_ids(tokenizer))
    return save_tiny_causal_lm(Phi3ForCausalLM, config, tokenizer, out_dir, seed, ("<|endoftext|>",))
