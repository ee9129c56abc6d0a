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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo_kit.data.spans import SPANS_KEY, SpanError, parse_spans
from tempo_kit.errors import TempoKitError
from tempo_kit.model.prompts import Turn

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class AnnotationError(TempoKitError, ValueError):
    """An annotation file or row is malformed; the message names the file, line and fix."""


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


def read_text(path: Path) -> str:
    """An annotation file's text: UTF-8, with or without a byte-order mark (as Windows tools write).

    Any other encoding is refused with the position of the first bad byte, instead of a decoding
    traceback or silently garbled questions.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AnnotationError(
            f"{path} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); re-save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path} > fixed.jsonl"
        ) from None


def read_rows(path: str | Path) -> list[tuple[int, Any]]:
    """``(line_or_position, row)`` pairs of a JSON list or JSONL file.

    A JSONL line that is not valid JSON is returned as an :class:`AnnotationError` in place of the
    row, so one bad line does not hide the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    text = read_text(path)
    stripped = text.lstrip()
    if path.suffix == ".json" or stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnnotationError(f"{path} is not valid JSON (line {error.lineno}): {error.msg}") from error
        if not isinstance(rows, list):
            raise AnnotationError(f"{path} must hold a JSON list of rows, got {type(rows).__name__}")
        return list(enumerate(rows, start=1))
    out: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            out.append((number, AnnotationError(f"{path}:{number}: not valid JSON ({error.msg})")))
    return out


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
