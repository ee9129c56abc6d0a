"""LLaVA-style annotation files: reading and checking rows.

A file is a JSON list or JSON lines (``.jsonl``), one row per sample::

    {"id": "v1", "video": "clips/v1.mp4",
     "conversations": [{"from": "human", "value": "<video>\\nWhat happens?"},
                       {"from": "gpt", "value": "A dog runs."}]}

``video`` or ``image`` (paths relative to a media root) or neither (a text-only sample);
``conversations`` alternate human / gpt, starting with human, and may have many turns; ``id`` is
optional (default ``file:line``). Multiple-choice rows may add ``question``, ``options`` and
``answer`` (a letter); a row may add ``relevant_spans: [[start_s, end_s], ...]``, where the answer
is seen (checked by :mod:`tempo_kit.data.spans`, against the row's ``duration`` when it has one);
anything else is kept as metadata. Malformed rows are reported with the file,
the line and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo_kit.data.rows import AnnotationError, read_rows
from tempo_kit.data.spans import SPANS_KEY, SpanError, parse_spans
from tempo_kit.model.prompts import Turn

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass
class Record:
    """One checked annotation row."""

    id: str
    kind: str  # "video" | "image" | "text"
    media: str | None
    turns: list[Turn]
    where: str  # "file:line" for messages
    answer: str | None = None
    options: list[str] | None = None
    question: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: ``(start_s, end_s)`` spans holding the answer; ``None`` when the row has none
    relevant_spans: list[tuple[float, float]] | None = None


def parse_row(row: Any, where: str) -> Record:
    """Check one row and turn it into a :class:`Record` (raises :class:`AnnotationError`)."""
    if isinstance(row, AnnotationError):
        raise row
    if not isinstance(row, dict):
        raise AnnotationError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    if row.get("video") and row.get("image"):
        raise AnnotationError(f"{where}: a row has either 'video' or 'image', not both")
    kind, media = "text", None
    for key in ("video", "image"):
        value = row.get(key)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise AnnotationError(f"{where}: '{key}' must be a non-empty path string, got {value!r}")
            kind, media = key, value
    conversations = row.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise AnnotationError(f"{where}: 'conversations' must be a non-empty list of {{from, value}} turns")
    turns = []
    for number, turn in enumerate(conversations):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise AnnotationError(f"{where}: turn {number} must be an object with a string 'value'")
        role = ROLES.get(turn.get("from"))
        if role is None:
            raise AnnotationError(
                f"{where}: turn {number} has from={turn.get('from')!r}; expected 'human' or 'gpt'"
            )
        expected = "user" if number % 2 == 0 else "assistant"
        if role != expected:
            raise AnnotationError(
                f"{where}: turns must alternate human/gpt starting with human; turn {number} is {turn.get('from')!r}"
            )
        turns.append(Turn(role, turn["value"]))
    options = row.get("options")
    if options is not None and (
        not isinstance(options, list) or not all(isinstance(o, str) for o in options)
    ):
        raise AnnotationError(f"{where}: 'options' must be a list of strings")
    spans = None
    if row.get(SPANS_KEY) is not None:
        duration = row.get("duration")
        duration = float(duration) if isinstance(duration, (int, float)) and duration > 0 else None
        try:
            spans = parse_spans(row[SPANS_KEY], where, duration)
        except SpanError as error:
            raise AnnotationError(str(error)) from error
    known = {"id", "video", "image", "conversations", "answer", "options", "question", SPANS_KEY}
    answer = row.get("answer")
    return Record(
        id=str(row.get("id", where)),
        kind=kind,
        media=media,
        turns=turns,
        where=where,
        answer=None if answer is None else str(answer),
        options=options,
        question=row.get("question"),
        meta={k: v for k, v in row.items() if k not in known},
        relevant_spans=spans,
    )


def load_annotations(path: str | Path, on_error: str = "skip", skip_log=None) -> list[Record]:
    """All valid rows of ``path``; bad rows are skipped and logged, or raise (``on_error``)."""
    records = []
    for number, row in read_rows(path):
        where = f"{path}:{number}"
        try:
            records.append(parse_row(row, where))
        except AnnotationError as error:
            if on_error == "raise":
                raise
            if skip_log is not None:
                skip_log.add(where, str(path), f"malformed row: {error}")
    return records
