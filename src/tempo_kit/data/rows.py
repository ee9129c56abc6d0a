"""Reading the rows of an annotation file: the one reader behind training data and benchmarks.

A file is a JSON list, a JSON object whose values are lists of rows (e.g. ``{"task": [rows]}``, as
some benchmarks ship), JSON lines, or Parquet (benchmarks' Hugging Face exports; needs pyarrow).
Rows come back numbered (the JSONL line, else the position from 1) so every message can name
where a row is; a JSONL line that is not JSON comes back as an :class:`AnnotationError` in its
place, so one bad line does not hide the rest. Imports neither torch nor the video stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tempo_kit.errors import TempoKitError


class AnnotationError(TempoKitError, ValueError):
    """An annotation file or row is malformed; the message names the file, line and fix."""


def read_text(path: Path) -> str:
    """The file as text: UTF-8, with or without a byte-order mark (Windows editors add one).

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
    """``(line_or_position, row)`` pairs of a JSON, JSONL or Parquet file (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    if path.suffix == ".parquet":
        return list(enumerate(_parquet_rows(path), start=1))
    text = read_text(path)
    if path.suffix == ".json" or text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnnotationError(f"{path} is not valid JSON (line {error.lineno}): {error.msg}") from error
        if isinstance(data, Mapping):  # {"task": [rows], ...}
            data = [row for value in data.values() if isinstance(value, list) for row in value] or None
        if not isinstance(data, list):
            raise AnnotationError(
                f"{path} must hold a JSON list of rows (or an object of such lists); it holds no list of rows"
            )
        return list(enumerate(data, start=1))
    out: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            out.append((number, AnnotationError(f"{path}:{number}: not valid JSON ({error.msg})")))
    return out


def _parquet_rows(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise AnnotationError(f"{path}: reading Parquet needs pyarrow; pip install 'tempo-kit[eval]'") from None
    return [_jsonable(row) for row in pq.read_table(path).to_pylist()]


def _jsonable(value: Any) -> Any:
    """Parquet cells (numpy arrays and scalars) as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
