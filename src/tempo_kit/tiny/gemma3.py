"""A tiny Gemma 3 text decoder (``Gemma3ForCausalLM``): scaled embeddings, tied head, no system role."""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_family_tokenizer

GEMMA_SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]

#: Gemma 3's template for text messages: the system text opens the first user turn.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim"
    " + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def build_gemma3_tokenizer():
    return build_family_tokenizer(
        GEMMA_SPECIAL_TOKENS, GEMMA3_TEMPLATE, bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>"
    )


def save_tiny_gemma3(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """A tiny Gemma 3 (1B's switches: tied, sliding-window layers); stops at ``<eos>`` like the base model."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = tokenizer or build_gemma3_tokenizer()
    config = Gemma3TextConfig(
        **TINY_DECODER_SIZES,
        query_pre_attn_scalar=TINY_DECODER_SIZES["head_dim"],
        sliding_window=512,
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        **special_ids(tokenizer),
    )
    return save_tiny_causal_lm(Gemma3ForCausalLM, config, tokenizer, out_dir, seed, ("<eos>",))
