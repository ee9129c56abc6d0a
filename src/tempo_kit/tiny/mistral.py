"""A tiny Mistral decoder (``MistralForCausalLM``, untied head, ``[INST]`` chat format, no pad token)."""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_family_tokenizer

MISTRAL_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]

#: Mistral-7B-Instruct-v0.3's template for text messages (its tool branches left out): the system
#: text goes into the LAST message, when that is a user turn; a conversation ending in a reply
#: (a training sample) carries no system text at all.
MISTRAL_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set loop_messages = messages %}{% endif %}"
    "{{ bos_token }}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.last and system_message is defined %}{{ '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% endif %}"
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
