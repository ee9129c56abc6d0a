"""The chat formats a decoder prompt is written in, one per decoder family's tokenizer.

Each format is the text of its family's own chat template for a text conversation (no tools):
ChatML for Qwen and SmolLM2, the header format of Llama 3.x, Gemma's turns, Mistral's
``[INST]`` and Phi-3's role tags. It is the tokenizer, not the architecture, that decides: SmolLM2
and Llama 3.x are both ``llama`` checkpoints with different templates. Each format names a marker
token; the first format whose marker the tokenizer has (as a token or in its chat template) is
the tokenizer's format. The test suite checks each against the tiny tokenizers' Jinja templates.
"""

from __future__ import annotations

from dataclasses import dataclass

from tempo_kit.errors import ConfigError


@dataclass(frozen=True)
class ChatFormat:
    """How one chat template writes a conversation.

    Attributes:
        name: the format's name.
        marker: a token only this format's tokenizers have (how :func:`chat_format_of` finds it).
        begin: text before everything (the beginning-of-sequence token where the template writes one).
        system: the system turn, field ``system``; ``None`` when the template has no system role and
            puts the system text at the start of the first user turn (:attr:`system_in_user`).
        system_in_user: the system text inside a user turn, for templates without a system role.
        system_in_last_user: put :attr:`system_in_user` into the conversation's last turn when that is
            a user turn, and nowhere otherwise (Mistral v0.3); ``False``: into the first user turn (Gemma).
        user_open / user_close: around a user turn's text.
        assistant_open: the assistant turn's opening (the generation prompt).
        reply_prefix: text the template puts before the reply inside the supervised span.
        end_of_turn: closes a reply; supervised, and generation stops at it.
        after_reply: text after ``end_of_turn`` (unsupervised).
        closing: text after the last turn of a conversation without a generation prompt (Phi-3's
            end of sequence; unsupervised).
    """

    name: str
    marker: str
    begin: str
    system: str | None
    user_open: str
    user_close: str
    assistant_open: str
    end_of_turn: str
    after_reply: str = ""
    reply_prefix: str = ""
    system_in_user: str = "{system}\n\n"
    system_in_last_user: bool = False
    closing: str = ""


#: What Llama 3.1 / 3.2's template writes before the system text of every conversation. The date is
#: the template's own fallback: Llama 3.2's template writes the day it is rendered when it can, which
#: would make the same sample a different prompt each day.
LLAMA3_KNOWLEDGE_CUTOFF = "December 2023"
LLAMA3_TODAY_DATE = "26 Jul 2024"
LLAMA3_SYSTEM_PREAMBLE = f"Cutting Knowledge Date: {LLAMA3_KNOWLEDGE_CUTOFF}\nToday Date: {LLAMA3_TODAY_DATE}\n\n"


CHATML = ChatFormat(
    name="chatml",
    marker="<|im_start|>",
    begin="",
    system="<|im_start|>system\n{system}<|im_end|>\n",
    user_open="<|im_start|>user\n",
    user_close="<|im_end|>\n",
    assistant_open="<|im_start|>assistant\n",
    end_of_turn="<|im_end|>",
    after_reply="\n",
)
LLAMA3 = ChatFormat(
    name="llama3",
    marker="<|start_header_id|>",
    begin="<|begin_of_text|>",
    system="<|start_header_id|>system<|end_header_id|>\n\n" + LLAMA3_SYSTEM_PREAMBLE + "{system}<|eot_id|>",
    user_open="<|start_header_id|>user<|end_header_id|>\n\n",
    user_close="<|eot_id|>",
    assistant_open="<|start_header_id|>assistant<|end_header_id|>\n\n",
    end_of_turn="<|eot_id|>",
)
GEMMA = ChatFormat(
    name="gemma",
    marker="<start_of_turn>",
    begin="<bos>",
    system=None,
    user_open="<start_of_turn>user\n",
    user_close="<end_of_turn>\n",
    assistant_open="<start_of_turn>model\n",
    end_of_turn="<end_of_turn>",
    after_reply="\n",
)
PHI3 = ChatFormat(
    name="phi3",
    marker="<|assistant|>",
    begin="",
    system="<|system|>\n{system}<|end|>\n",
    user_open="<|user|>\n",
    user_close="<|end|>\n",
    assistant_open="<|assistant|>\n",
    end_of_turn="<|end|>",
    after_reply="\n",
    closing="<|endoftext|>",
)
MISTRAL = ChatFormat(
    name="mistral",
    marker="[INST]",
    begin="<s>",
    system=None,
    user_open="[INST] ",
    user_close="[/INST]",
    assistant_open="",
    reply_prefix=" ",
    end_of_turn="</s>",
    system_in_last_user=True,
)

#: The formats, in the order they are tried.
CHAT_FORMATS: tuple[ChatFormat, ...] = (CHATML, LLAMA3, GEMMA, PHI3, MISTRAL)


def has_token(tokenizer, token: str) -> bool:
    """Whether ``token`` is one token of ``tokenizer`` (not split, not the unknown token)."""
    found = tokenizer.convert_tokens_to_ids(token)
    return found is not None and (tokenizer.unk_token_id is None or found != tokenizer.unk_token_id)


def chat_format_of(tokenizer) -> ChatFormat:
    """The chat format of ``tokenizer``: the first of :data:`CHAT_FORMATS` whose marker it knows.

    A tokenizer with none of the markers is refused in one line (the kit would otherwise write a
    prompt the model was never trained on).
    """
    template = tokenizer.chat_template if isinstance(getattr(tokenizer, "chat_template", None), str) else ""
    for form in CHAT_FORMATS:
        if has_token(tokenizer, form.marker) or form.marker in template:
            return form
    raise ConfigError(
        f"the decoder's tokenizer ({type(tokenizer).__name__}) has none of the chat formats the kit writes "
        f"({', '.join(f'{f.name}: {f.marker}' for f in CHAT_FORMATS)}); use an instruct checkpoint's "
        "tokenizer, or add a ChatFormat in tempo_kit/model/chat_formats.py"
    )


def stop_token_ids(tokenizer) -> list[int]:
    """Ids generation stops at: the format's end-of-turn token and the tokenizer's end of sequence."""
    ids = [tokenizer.convert_tokens_to_ids(chat_format_of(tokenizer).end_of_turn), tokenizer.eos_token_id]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))
