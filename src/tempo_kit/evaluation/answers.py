"""Reading the chosen option letter out of a model's free-form multiple-choice reply.

Models answer the same question as ``D``, ``(D)``, ``D.``, ``D) the red circle``,
``The answer is D``, ``**Answer:** (D)``, ``\\boxed{D}``, or after a paragraph of reasoning.
Benchmarks whose scores do not reproduce often differ only here, so the rules are explicit and
ordered from the most to the least certain:

1. reasoning blocks (``<think>…</think>``) and markdown emphasis are removed;
2. the whole reply is one letter, maybe wrapped (``D``, ``(d)``, ``D.``, ``[D]``, ``D: red``);
3. an explicit statement — ``answer is D``, ``Answer: (D)``, ``option D``, ``\\boxed{D}``,
   ``<answer>D</answer>`` — the **last** one wins, since reasoning ends with the verdict;
4. the reply *starts* with a marked letter (``(D) red circle``, ``D. red circle``, ``D) …``);
5. the reply quotes exactly one option's text (when the options are given);
6. exactly one distinct standalone capital letter among the valid ones appears
   (the article "A"/pronoun "I" followed by a word does not count).

Anything else — no letter, several candidate letters, a letter beyond the options — gives
``None``, which the harness scores as wrong and records as unparsed, never as a guess.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

#: Letters option lists use, in order (A for the first option).
OPTION_LETTERS = string.ascii_uppercase

_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_EMPHASIS = re.compile(r"[*_`]+")
_SOLE_LETTER = re.compile(r"""^[\(\[\{<"']?\s*([A-Za-z])\s*[\)\]\}>"']?\s*[.:,;!]?$""")
_VERDICT = r"(?:\s+(?i:is|would be|should be|will be|must be))?\s*[:=]?\s*"
_EXPLICIT = [
    re.compile(r"\\boxed\{\s*\(?([A-Za-z])\)?\s*\}"),
    re.compile(r"<answer>\s*\(?([A-Za-z])\)?\s*</answer>", re.IGNORECASE),
    re.compile(r"(?i:answer)" + _VERDICT + r"(?i:(?:option|choice|letter)\s+)?[\(\[]?([A-Z])(?![A-Za-z'’])"),
    re.compile(r"(?i:answer)" + _VERDICT + r"[\(\[]?([a-z])[\)\]]?\s*[.!]?\s*$"),
    re.compile(r"(?i:\b(?:option|choice))" + _VERDICT + r"[\(\[]?([A-Z])(?![A-Za-z'’])"),
]
_LEADING = re.compile(r"^(?:[\(\[]([A-Za-z])[\)\]]|([A-Z])[.:)](?=\s|$))")
_STANDALONE = re.compile(r"(?<![A-Za-z'’\-])([A-Z])(?![A-Za-z'’\-])")
#: "I" followed by a lower-case word is the pronoun ("I think", "I would"), not a choice.
_PRONOUN = re.compile(r"\s+[a-z]")
#: "A" followed by a lower-case word is the article ("A man"), not a choice — unless the word
#: is one that follows a named option ("A and C", "A is wrong").
_ARTICLE = re.compile(
    r"\s+(?!(?:and|or|nor|is|was|are|were|vs|versus|then|but|seems|looks|would|could|might|should|must"
    r"|will|can|because|since|as|if)\b)[a-z]"
)


def valid_letters(num_options: int) -> str:
    """The letters of ``num_options`` options: ``valid_letters(4) == "ABCD"``."""
    if not 1 <= num_options <= len(OPTION_LETTERS):
        raise ValueError(f"num_options must be between 1 and {len(OPTION_LETTERS)}, got {num_options}")
    return OPTION_LETTERS[:num_options]


def _clean(text: str) -> str:
    text = _THINK.sub(" ", text)
    return _EMPHASIS.sub("", text).strip()


def _is_word(letter: str, text: str, end: int) -> bool:
    """True when ``letter`` is the article "A" / pronoun "I" of a sentence, not a choice."""
    if letter == "I":
        return _PRONOUN.match(text, end) is not None
    return letter == "A" and _ARTICLE.match(text, end) is not None


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _from_option_text(text: str, letters: str, options: Sequence[str]) -> str | None:
    reply = f" {_normalise(text)} "
    hits = [
        letter
        for letter, option in zip(letters, options)
        if _normalise(option) and f" {_normalise(option)} " in reply
    ]
    if len(hits) == 1:
        return hits[0]
    # one option contained in another ("red" in "red circle"): keep the longest if it is unique
    if len(hits) > 1:
        longest = max(hits, key=lambda h: len(_normalise(options[letters.index(h)])))
        others = [h for h in hits if h != longest]
        longest_text = _normalise(options[letters.index(longest)])
        if all(_normalise(options[letters.index(h)]) in longest_text for h in others):
            return longest
    return None


def extract_choice(text: str | None, num_options: int, options: Sequence[str] | None = None) -> str | None:
    """The option letter (``"A"``…) a reply chooses, or ``None`` if it does not choose exactly one.

    Args:
        text: the model's reply.
        num_options: how many options the question has; letters beyond them are never returned.
        options: the options' texts, to recognise a reply that quotes an option instead of its
            letter (rule 5). Optional.
    """
    letters = valid_letters(num_options)
    if options is not None and len(options) != num_options:
        raise ValueError(f"got {len(options)} option texts for num_options={num_options}")
    if not text:
        return None
    cleaned = _clean(text)
    if not cleaned:
        return None

    sole = _SOLE_LETTER.match(cleaned)
    if sole:
        letter = sole.group(1).upper()
        return letter if letter in letters else None

    for pattern in _EXPLICIT:
        found = [
            m.group(1).upper()
            for m in pattern.finditer(cleaned)
            if not _is_word(m.group(1), cleaned, m.end(1))
        ]
        found = [f for f in found if f in letters]
        if found:
            return found[-1]

    leading = _LEADING.match(cleaned)
    if leading:
        letter = (leading.group(1) or leading.group(2)).upper()
        if letter in letters:
            return letter

    if options is not None:
        by_text = _from_option_text(cleaned, letters, options)
        if by_text is not None:
            return by_text

    candidates = set()
    for match in _STANDALONE.finditer(cleaned):
        letter = match.group(1)
        if _is_word(letter, cleaned, match.end()):
            continue
        if letter in letters:
            candidates.add(letter)
    if len(candidates) == 1:
        return candidates.pop()
    return None
