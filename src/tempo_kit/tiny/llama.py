"""Tiny Llama-family decoders: Llama 3.x (header chat format, untied head) and SmolLM2 (ChatML, tied).

Both are ``LlamaForCausalLM`` checkpoints; they differ in the tokenizer (special tokens and chat
template), which is what decides the decoder prompt, and in whether the LM head is tied.
"""

from __future__ import annotations

from pathlib import Path

from tempo_kit.tiny.causal_lm import TINY_DECODER_SIZES, save_tiny_causal_lm, special_ids
from tempo_kit.tiny.tokenizer import build_family_tokenizer

LLAMA3_SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

#: Llama 3.1 / 3.2's template for text messages (its tool branches left out): a system turn always,
#: opened by the knowledge-cutoff and date preamble; ``date_string`` defaults to the template's own
#: fallback (Llama 3.2's template writes today's date when the renderer offers ``strftime_now``).
LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% if not date_string is defined %}{% set date_string = '26 Jul 2024' %}{% endif %}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] | trim %}{% set messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% endif %}"
    "{{ '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{ 'Cutting Knowledge Date: December 2023\\n' }}{{ 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{ system_message }}{{ '<|eot_id|>' }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

SMOLLM2_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

#: SmolLM2-Instruct's template: ChatML with its own default system turn.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_llama3_tokenizer():
    """Llama 3.x's special tokens and template; no padding token, as in the real one."""
    return build_family_tokenizer(
        LLAMA3_SPECIAL_TOKENS, LLAMA3_TEMPLATE, bos="<|begin_of_text|>", eos="<|end_of_text|>"
    )


def build_smollm2_tokenizer():
    """SmolLM2-Instruct's special tokens (ChatML) and template."""
    return build_family_tokenizer(
        SMOLLM2_SPECIAL_TOKENS, SMOLLM2_TEMPLATE, bos="<|im_start|>", eos="<|im_end|>", pad="<|im_end|>"
    )


def llama_config(tokenizer, tied: bool):
    from transformers import LlamaConfig

    return LlamaConfig(
        **TINY_DECODER_SIZES, vocab_size=len(tokenizer), tie_word_embeddings=tied, **special_ids(tokenizer)
    )


def save_tiny_llama(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """A tiny Llama 3.x (untied head, as Llama-3.1-8B); stops at ``<|end_of_text|>`` like the base model."""
    from transformers import LlamaForCausalLM

    tokenizer = tokenizer or build_llama3_tokenizer()
    config = llama_config(tokenizer, tied=False)
    return save_tiny_causal_lm(LlamaForCausalLM, config, tokenizer, out_dir, seed, ("<|end_of_text|>",))


def save_tiny_smollm2(out_dir: str | Path, tokenizer=None, seed: int = 0) -> Path:
    """A tiny SmolLM2 (Llama architecture, tied embeddings, ChatML)."""
    from transformers import LlamaForCausalLM

    tokenizer = tokenizer or build_smollm2_tokenizer()
    config = llama_config(tokenizer, tied=True)
    return save_tiny_causal_lm(LlamaForCausalLM, config, tokenizer, out_dir, seed, ("<|im_end|>",))
