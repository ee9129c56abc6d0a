"""Temporal-grounding datasets → kit annotation rows with ``relevant_spans`` (the router stage's data).

Two layouts are read:

* ``charades-sta``: Charades-STA's text files, one query a line: ``VIDEO_ID START END##SENTENCE``
  (seconds). Durations are not in the file; ``durations`` (Charades' CSV, columns ``id`` and
  ``length``) adds them, so spans past the end are caught.
* ``qvhighlights``: QVHighlights' JSON lines: ``{"qid", "query", "vid", "duration",
  "relevant_windows": [[start, end], ...]}``.

Each query becomes one row: the video path from ``video_pattern`` (``{vid}`` is the dataset's video
id), a human turn ``<video>\\n<query>``, a gpt turn stating the span(s) in seconds (used only if the
router stage adds the answer loss), ``question``, ``relevant_spans`` and, when known,
``duration``. A query whose spans are malformed or lie outside the video (rules in
:mod:`tempo_kit.data.spans`) is skipped and counted, never written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo_kit.atomic import check_output_path, write_text
from tempo_kit.data.rows import read_text
from tempo_kit.data.spans import SPANS_KEY, SpanError, parse_spans
from tempo_kit.errors import ConfigError

FORMATS = ("charades-sta", "qvhighlights")
DEFAULT_VIDEO_PATTERN = "{vid}.mp4"


@dataclass
class Conversion:
    """What :func:`convert_grounding` wrote and skipped."""

    rows: int = 0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        skips = ", ".join(f"{n}× {reason}" for reason, n in self.skipped.most_common()) or "none"
        return f"{self.rows} rows written; skipped: {skips}"


def _seconds(value: Any) -> float | None | str:
    """A duration as seconds: a number, or a number written as text (``"150.0"``); ``None`` when
    absent; the reason to skip the row when it is no finite positive number."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return "'duration' is not a number of seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        return "'duration' is not a positive number of seconds"
    return float(value)


def _charades(path: Path, durations: dict[str, float]) -> Iterator[tuple[str, dict[str, Any] | str]]:
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3 or not sentence.strip():
            yield where, "not 'VIDEO_ID START END##SENTENCE'"
            continue
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            yield where, "START/END are not numbers"
            continue
        yield (
            where,
            {
                "vid": parts[0],
                "query": sentence.strip(),
                "spans": [[start, end]],
                "duration": durations.get(parts[0]),
            },
        )


def _qvhighlights(path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            yield where, "not valid JSON"
            continue
        if not isinstance(row, dict) or not row.get("vid") or row.get("query") is None:
            yield where, "missing 'vid' or 'query'"
            continue
        if not isinstance(row["query"], str) or not row["query"].strip():
            yield where, "'query' is not text"
            continue
        duration = _seconds(row.get("duration"))
        if isinstance(duration, str):
            yield where, duration
            continue
        yield (
            where,
            {
                "vid": str(row["vid"]),
                "query": str(row["query"]).strip(),
                "spans": row.get("relevant_windows"),
                "duration": duration,
                "qid": row.get("qid"),
            },
        )


def read_durations(path: str | Path) -> dict[str, float]:
    """``{video id: seconds}`` from a CSV with ``id`` and ``length`` columns (Charades' metadata)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--durations {path}: file not found")
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    if not reader.fieldnames or not {"id", "length"} <= set(reader.fieldnames):
        raise ConfigError(f"--durations {path}: needs 'id' and 'length' columns, has {reader.fieldnames}")
    durations = {}
    for row in reader:
        if row.get("length"):
            seconds = _seconds(row["length"])
            if not isinstance(seconds, float):
                raise ConfigError(
                    f"--durations {path}:{reader.line_num}: length {row['length']!r} of {row['id']!r} is not a "
                    "positive number of seconds; fix or remove that line"
                )
            durations[row["id"]] = seconds
    return durations


def _answer(spans: list[tuple[float, float]]) -> str:
    return "; ".join(f"From {a:.1f} to {b:.1f} seconds." for a, b in spans)


def convert_grounding(
    source: str | Path,
    output: str | Path,
    fmt: str,
    *,
    video_pattern: str = DEFAULT_VIDEO_PATTERN,
    durations: str | Path | None = None,
) -> Conversion:
    """Convert ``source`` (layout ``fmt``) into the JSONL file ``output``; see the module docstring."""
    source = Path(source)
    if fmt not in FORMATS:
        from tempo_kit.errors import did_you_mean

        raise ConfigError(f"--format {fmt!r}: choose {' or '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    if not source.is_file():
        raise ConfigError(f"{source}: file not found")
    output = check_output_path(output, what="output", kind="file")
    if output.resolve() == source.resolve():
        raise ConfigError(f"output {output} is the source file: write the rows to another file")
    if "{vid}" not in video_pattern:
        raise ConfigError(
            f"--video-pattern {video_pattern!r} must contain {{vid}}, e.g. {DEFAULT_VIDEO_PATTERN}"
        )
    if fmt == "charades-sta":
        items = _charades(source, read_durations(durations) if durations else {})
    else:
        items = _qvhighlights(source)
    result = Conversion()
    lines = []
    for number, (where, item) in enumerate(items):
        if isinstance(item, str):
            result.skipped[item] += 1
            continue
        try:
            spans = parse_spans(item["spans"], where, item["duration"])
        except SpanError as error:
            result.skipped[_reason(error)] += 1
            continue
        if not spans:
            result.skipped["no spans"] += 1
            continue
        row = {
            "id": str(item.get("qid") if item.get("qid") is not None else f"{fmt}-{number}"),
            "video": video_pattern.format(vid=item["vid"]),
            "conversations": [
                {"from": "human", "value": f"<video>\n{item['query']}"},
                {"from": "gpt", "value": _answer(spans)},
            ],
            "question": item["query"],
            SPANS_KEY: [list(span) for span in spans],
        }
        if item["duration"] is not None:
            row["duration"] = item["duration"]
        lines.append(json.dumps(row))
    result.rows = len(lines)
    write_text(output, "".join(line + "\n" for line in lines))
    return result


def _reason(error: SpanError) -> str:
    """A short skip reason from a span error (its kind, without the row's location)."""
    text = str(error)
    for reason in ("ends before it starts", "starts at or after the end", "starts before 0", "must be"):
        if reason in text:
            return reason
    return "bad span"
