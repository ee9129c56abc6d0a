"""A tiny Mistral decoder (``MistralForCausalLM``, untied head, ``[INST]`` chat format, no pad token)."""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_family_tokenizer

MISTRAL_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]

#: Mistral-7B-Instruct-v0.3's template for text messages, the system text before the first user
#: turn's text (v0.3 puts it before the last one: the same for a single question).
MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + (system if loop.first else '') + message['content'] + '[/INST]' }}"
    "{% else %}{{ ' ' + message['content'] | trim + eos_token }}{% endif %}"
    "{% endfor %}"
)


def build_mistral_tokenizer():
    return build_family_tokenizer(MISTRAL_SPECIAL_TOKENS, MISTRAL_TEMPLATE, bos="<s>", eos="</s>", unk="<unk>")


def save_tiny_mistral(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    from transformers import MistralConfig, MistralForCausalLM

    tokenizer = tokenizer or build_mistral_tokenizer()
    config = MistralConfig(
        **TINY_DECODER_SIZES,
        sliding_window=None,
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,
        **special_ids(tokenizer),
    )
    return save_tiny_causal_lm(MistralForCausalLM, config, tokenizer, out_dir, seed, ("</s>",))
