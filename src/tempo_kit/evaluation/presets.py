"""Per-benchmark prompts, byte-equal to lmms-eval's ``doc_to_text`` (``default`` model kwargs).

The released Tempo was evaluated through lmms-eval (compatibility §7), which asks each benchmark
in its own words and with its own answer limit. The prompt is also what the SVLM is conditioned
on, so a different wording changes which segments get tokens, not only how the LLM answers.
``{q}`` is the question, options in each benchmark's style:

| preset | prompt | new tokens |
|---|---|---|
| ``lvbench`` | ``{q}\\n(A) …\\n(B) …\\nAnswer the question with the option letter`` | 16 |
| ``mlvu`` | ``{q}\\n(A) …\\n(B) …\\n\\nOnly give the best option.\\nBest option: (`` | 16 |
| ``videomme`` | ``Select the best answer … (A, B, C, or D) of the correct option.\\n{q}\\nA. …\\n\\nAnswer with the option's letter from the given choices directly.`` | 16 |
| ``longvideobench`` | ``{q}\\nA. …\\nB. …\\nAnswer with the option's letter from the given choices directly.\\n`` | 32 |
| ``kit`` | the harness's generic instruction, ``{q}``, ``A. …`` lines, instruction | 16 |

Where a benchmark's rows already hold the options inside the question (LVBench, ``sy1998/MLVU_dev``),
that text is used as it is, so the prompt is the row's own bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.evaluation.answers import valid_letters
from tempo_kit.evaluation.items import DEFAULT_POST_PROMPT, DEFAULT_PRE_PROMPT, BenchmarkItem

#: Key of :attr:`BenchmarkItem.extra` holding a question whose options are written inside it.
QUESTION_WITH_OPTIONS = "question_with_options"

VIDEOMME_INSTRUCTION = (
    "Select the best answer to the following multiple-choice question based on the video and the "
    "subtitles. Respond with only the letter (A, B, C, or D) of the correct option."
)
VIDEOMME_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."
LVBENCH_POST_PROMPT = "\nAnswer the question with the option letter"
MLVU_POST_PROMPT = "\nOnly give the best option.\nBest option: ("
LONGVIDEOBENCH_POST_PROMPT = "Answer with the option's letter from the given choices directly.\n"
#: New tokens lmms-eval's tasks allow (``generation_kwargs.max_new_tokens``).
TASK_MAX_NEW_TOKENS = 16
LONGVIDEOBENCH_MAX_NEW_TOKENS = 32


def _parenthesised(item: BenchmarkItem) -> str:
    """``{q}\\n(A) x\\n(B) y``, or the row's own text when its question holds the options."""
    if item.extra.get(QUESTION_WITH_OPTIONS):
        return str(item.extra[QUESTION_WITH_OPTIONS])
    letters = valid_letters(item.num_options)
    return "\n".join([item.question, *(f"({k}) {o}" for k, o in zip(letters, item.options))])


def _dotted(item: BenchmarkItem) -> str:
    """``{q}\\nA. x\\nB. y``."""
    letters = valid_letters(item.num_options)
    return "\n".join([item.question, *(f"{k}. {o}" for k, o in zip(letters, item.options))])


def lvbench_prompt(item: BenchmarkItem) -> str:
    return _parenthesised(item) + LVBENCH_POST_PROMPT


def mlvu_prompt(item: BenchmarkItem) -> str:
    if item.extra.get(QUESTION_WITH_OPTIONS):  # sy1998/MLVU_dev's question ends with its own newline
        return _parenthesised(item) + MLVU_POST_PROMPT
    return _parenthesised(item) + "\n" + MLVU_POST_PROMPT


def videomme_prompt(item: BenchmarkItem) -> str:
    return f"{VIDEOMME_INSTRUCTION}\n{_dotted(item)}\n{VIDEOMME_POST_PROMPT}"


def longvideobench_prompt(item: BenchmarkItem) -> str:
    return f"{_dotted(item)}\n{LONGVIDEOBENCH_POST_PROMPT}"


@dataclass(frozen=True)
class PromptPreset:
    """How one benchmark asks: the prompt builder and the answer's token limit."""

    name: str
    build: Callable[[BenchmarkItem], str]
    max_new_tokens: int


def kit_preset(pre_prompt: str = DEFAULT_PRE_PROMPT, post_prompt: str = DEFAULT_POST_PROMPT) -> PromptPreset:
    """The generic preset for the kit's own annotation format, with its two instructions."""
    from tempo_kit.evaluation.items import format_prompt

    return PromptPreset(
        "kit", lambda item: format_prompt(item, pre_prompt, post_prompt), TASK_MAX_NEW_TOKENS
    )


PRESETS: dict[str, PromptPreset] = {
    "lvbench": PromptPreset("lvbench", lvbench_prompt, TASK_MAX_NEW_TOKENS),
    "mlvu": PromptPreset("mlvu", mlvu_prompt, TASK_MAX_NEW_TOKENS),
    "videomme": PromptPreset("videomme", videomme_prompt, TASK_MAX_NEW_TOKENS),
    "longvideobench": PromptPreset("longvideobench", longvideobench_prompt, LONGVIDEOBENCH_MAX_NEW_TOKENS),
}


def get_preset(name: str, pre_prompt: str = DEFAULT_PRE_PROMPT, post_prompt: str = DEFAULT_POST_PROMPT) -> PromptPreset:
    """A preset by name: ``kit`` (with the given instructions) or a benchmark's own."""
    if name == "kit":
        return kit_preset(pre_prompt, post_prompt)
    if name not in PRESETS:
        raise ConfigError(
            f"--prompt {name!r}: unknown preset{did_you_mean(name, ['kit', *PRESETS])}; "
            f"use kit or {', '.join(PRESETS)}"
        )
    return PRESETS[name]
