"""Prompt text and tokenisation shared by training collation and inference.

The **decoder prompt** (compatibility §4): the decoder's chat format (ChatML for Qwen) with the
  system turn ``You are a helpful assistant.``; the visual sequence goes at the start of the first
  user turn, followed by ``\\n`` and the text. Other decoder families use their own chat format
  (:mod:`tempo_kit.model.chat_formats`), read from their tokenizer.
  The visual sequence is marked by one :data:`~tempo_kit.types.VISUAL_PLACEHOLDER_ID` in the ids;
  the model replaces it by time tags and memory tokens. Only assistant turns are supervised.
The compressor's own prompts live with the compressors (:mod:`tempo_kit.compressors.prompts`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tempo_kit.model.chat_formats import ChatFormat, chat_format_of
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID

#: System turn of the global LLM (compatibility §4).
DECODER_SYSTEM_PROMPT = "You are a helpful assistant."

#: At most this many human turns go into a multi-turn training query (compatibility §4).
MAX_CONTEXT_TURNS = 16

#: Media placeholders that annotation files put in human turns; the visual sequence replaces them.
MEDIA_PLACEHOLDER_PATTERN = re.compile(r"\s*<(image|video)>\s*")


@dataclass(frozen=True)
class Turn:
    """One conversation turn: ``role`` is ``"user"`` or ``"assistant"``."""

    role: str
    text: str


def strip_media_placeholders(text: str) -> str:
    """Remove ``<image>``/``<video>`` markers (the kit places the visual sequence itself)."""
    return MEDIA_PLACEHOLDER_PATTERN.sub(" ", text).strip()


def compressor_query(turns: Sequence[Turn], max_turns: int = MAX_CONTEXT_TURNS) -> str:
    """The compressor's query for a conversation.

    One user turn gives its text; several give ``Context turn 1: …\\nContext turn 2: …`` over at
    most ``max_turns`` user turns (the released training recipe, compatibility §4).
    """
    questions = [strip_media_placeholders(t.text) for t in turns if t.role == "user"][:max_turns]
    if not questions or not any(questions):
        raise ValueError("a conversation needs at least one non-empty user turn to form the compressor query")
    if len(questions) == 1:
        return questions[0]
    return "\n".join(f"Context turn {i}: {q}" for i, q in enumerate(questions, start=1))


def encode_decoder_prompt(
    tokenizer,
    turns: Sequence[Turn],
    *,
    has_visual: bool,
    add_generation_prompt: bool = False,
    system_prompt: str = DECODER_SYSTEM_PROMPT,
    chat_format: ChatFormat | None = None,
) -> tuple[Tensor, Tensor]:
    """Tokenise a conversation in the decoder's chat format into ``(input_ids [L], labels [L])``.

    The format is the tokenizer's own (:func:`chat_format_of`) unless ``chat_format`` is given;
    for Qwen it is ChatML. The visual placeholder id goes right after the first user turn's opening
    (``<|im_start|>user\\n`` in ChatML) and is followed by ``\\n``. Labels are :data:`IGNORE_INDEX`
    except assistant replies and their end-of-turn token (``<|im_end|>``). With
    ``add_generation_prompt`` the ids end with the assistant turn's opening (inference); the last
    turn must then be a user turn.
    """
    if not turns:
        raise ValueError("cannot encode an empty conversation")
    if turns[0].role != "user":
        raise ValueError(f"a conversation must start with a user turn, got {turns[0].role!r}")
    form = chat_format if chat_format is not None else chat_format_of(tokenizer)

    ids: list[int] = []
    labels: list[int] = []

    pending: list[str] = []  # unsupervised text is tokenised in runs, as the template's whole text is

    def flush() -> None:
        text = "".join(pending)
        pending.clear()
        if text:
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids.extend(piece)
            labels.extend([IGNORE_INDEX] * len(piece))

    def add(text: str, supervised: bool = False) -> None:
        if not supervised:
            pending.append(text)
            return
        flush()
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece)

    add(form.begin)
    if form.system is not None:
        add(form.system.format(system=system_prompt))
    first_user = True
    system_turn = system_turn_index(form, turns)
    for index, turn in enumerate(turns):
        if turn.role == "user":
            text = strip_media_placeholders(turn.text)
            add(form.user_open)
            if index == system_turn:
                add(form.system_in_user.format(system=system_prompt))
            if first_user and has_visual:
                flush()
                ids.append(VISUAL_PLACEHOLDER_ID)
                labels.append(IGNORE_INDEX)
                text = "\n" + text
            first_user = False
            add(text + form.user_close)
        elif turn.role == "assistant":
            add(form.assistant_open)
            add(form.reply_prefix + turn.text + form.end_of_turn, supervised=True)
            add(form.after_reply)
        else:
            raise ValueError(f"unknown turn role {turn.role!r}; expected 'user' or 'assistant'")
    if add_generation_prompt:
        if turns[-1].role != "user":
            raise ValueError("add_generation_prompt needs the conversation to end with a user turn")
        add(form.assistant_open)
    else:
        add(form.closing)
    flush()
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def system_turn_index(form: ChatFormat, turns: Sequence[Turn]) -> int | None:
    """The turn whose text the system text opens, for a format without a system role: the first user
    turn, or (Mistral) the last turn if it is a user turn, else none, as each template does."""
    if form.system is not None:
        return None
    if form.system_in_last_user:
        return len(turns) - 1 if turns[-1].role == "user" else None
    return next(i for i, turn in enumerate(turns) if turn.role == "user")
