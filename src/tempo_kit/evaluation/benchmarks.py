"""How the four long-video benchmarks' own annotation files map onto the harness's fields.

The harness reads ``id, video, question, options, answer[, category, duration]``
(:mod:`.items`). Each public benchmark ships its questions differently; one function per
benchmark turns its rows into harness rows, and :func:`convert_annotations` writes them as JSONL.

| benchmark | id | video | options | answer | category | duration |
|---|---|---|---|---|---|---|
| Video-MME | ``question_id`` | ``{videoID}.mp4`` | ``options`` (``"A. …"``) | ``answer`` letter | ``task_type`` | ``duration`` label short/medium/long |
| LVBench | ``uid`` | ``{key}.mp4`` | ``(A) …`` lines inside ``question`` | ``answer`` letter | first of ``question_type`` | ``video_info.duration_minutes`` × 60 |
| MLVU (dev) | ``{question_type}_{n}`` | ``{task folder}/{video}`` | ``candidates`` | index of ``answer`` text in ``candidates`` | ``question_type`` | ``duration`` s |
| LongVideoBench | ``id`` | ``video_path`` | ``candidates`` | ``correct_choice`` index | ``question_category`` | ``duration`` s |

Reporting conventions differ: Video-MME, LongVideoBench and LVBench report the per-sample mean
(``accuracy``); MLVU's M-Avg is the mean over its multiple-choice tasks (``category_mean``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.answers import OPTION_LETTERS

Row = dict[str, Any]

#: MLVU dev task → the folder its videos live in (``MLVU/video/<folder>``); the multiple-choice tasks.
MLVU_TASK_FOLDERS = {
    "plotQA": "1_plotQA",
    "findNeedle": "2_needle",
    "ego": "3_ego",
    "count": "4_count",
    "order": "5_order",
    "anomaly_reco": "6_anomaly_reco",
    "topic_reasoning": "7_topic_reasoning",
}

_INLINE_OPTION = re.compile(r"^\s*\(([A-Z])\)\s*(.*)$")


def _require(row: Mapping, keys: Iterable[str], benchmark: str, where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise ConfigError(
            f"{where}: a {benchmark} row needs field(s) {', '.join(missing)}; got {', '.join(sorted(row))}. "
            "Is this the right --format?"
        )


def _letter(index: int, num_options: int, where: str) -> str:
    if not 0 <= int(index) < num_options:
        raise ConfigError(f"{where}: answer index {index} is outside the {num_options} options")
    return OPTION_LETTERS[int(index)]


def from_videomme(rows: Iterable[Mapping], where: str = "Video-MME") -> Iterator[Row]:
    """Video-MME (``lmms-lab/Video-MME`` test split, exported to JSON/JSONL)."""
    for n, row in enumerate(rows, start=1):
        _require(
            row, ("question_id", "videoID", "question", "options", "answer"), "Video-MME", f"{where} row {n}"
        )
        yield {
            "id": str(row["question_id"]),
            "video": f"{row['videoID']}.mp4",
            "question": row["question"],
            "options": list(row["options"]),
            "answer": str(row["answer"]).strip(),
            "category": row.get("task_type"),
            "duration": row.get("duration"),
            "domain": row.get("domain"),
            "sub_category": row.get("sub_category"),
        }


def split_inline_options(text: str, where: str) -> tuple[str, list[str]]:
    """LVBench writes the options into the question: ``"Q?\\n(A) x\\n(B) y"`` → ``("Q?", [x, y])``."""
    question_lines, options = [], []
    for line in text.splitlines():
        match = _INLINE_OPTION.match(line)
        if match and match.group(1) == OPTION_LETTERS[len(options)]:
            options.append(match.group(2).strip())
        elif options:
            options[-1] += " " + line.strip()
        else:
            question_lines.append(line)
    if len(options) < 2:
        raise ConfigError(f"{where}: found {len(options)} '(A) …' option lines in the question {text[:80]!r}")
    return "\n".join(question_lines).strip(), options


def from_lvbench(rows: Iterable[Mapping], where: str = "LVBench") -> Iterator[Row]:
    """LVBench's ``video_info.meta.jsonl`` (one video a line, its questions under ``qa``), or
    flat rows that already carry ``key`` and ``uid``."""
    for n, row in enumerate(rows, start=1):
        questions = row.get("qa", [row])
        _require(row, ("key",), "LVBench", f"{where} row {n}")
        info = row.get("video_info") or {}
        minutes = info.get("duration_minutes")
        for qa in questions:
            _require(qa, ("uid", "question", "answer"), "LVBench", f"{where} row {n}")
            question, options = split_inline_options(qa["question"], f"{where} uid {qa['uid']}")
            types = qa.get("question_type") or []
            types = [types] if isinstance(types, str) else list(types)
            yield {
                "id": str(qa["uid"]),
                "video": f"{row['key']}.mp4",
                "question": question,
                "options": options,
                "answer": str(qa["answer"]).strip().strip("()"),
                "category": types[0] if types else None,
                "duration": None if minutes is None else float(minutes) * 60.0,
                "question_types": types,
                "time_reference": qa.get("time_reference"),
            }


def from_mlvu(rows: Iterable[Mapping], where: str = "MLVU", task_folder: str | None = None) -> Iterator[Row]:
    """MLVU dev (``MLVU/json/<n>_<task>.json``); the answer is the correct candidate's text."""
    counters: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        _require(
            row, ("video", "question", "candidates", "answer", "question_type"), "MLVU", f"{where} row {n}"
        )
        task = str(row["question_type"])
        candidates = [str(c) for c in row["candidates"]]
        if row["answer"] not in candidates:
            raise ConfigError(
                f"{where} row {n}: answer {row['answer']!r} is not one of the candidates {candidates}"
            )
        folder = task_folder or MLVU_TASK_FOLDERS.get(task, task)
        counters[task] = counters.get(task, 0) + 1
        yield {
            "id": f"{task}_{counters[task]}",
            "video": f"{folder}/{row['video']}",
            "question": row["question"],
            "options": candidates,
            "answer": _letter(candidates.index(row["answer"]), len(candidates), f"{where} row {n}"),
            "category": task,
            "duration": row.get("duration"),
        }


def from_longvideobench(rows: Iterable[Mapping], where: str = "LongVideoBench") -> Iterator[Row]:
    """LongVideoBench ``lvb_val.json``; ``correct_choice`` is a 0-based index."""
    for n, row in enumerate(rows, start=1):
        _require(
            row,
            ("id", "video_path", "question", "candidates", "correct_choice"),
            "LongVideoBench",
            f"{where} row {n}",
        )
        candidates = [str(c) for c in row["candidates"]]
        yield {
            "id": str(row["id"]),
            "video": str(row["video_path"]),
            "question": row["question"],
            "options": candidates,
            "answer": _letter(row["correct_choice"], len(candidates), f"{where} row {n}"),
            "category": row.get("question_category"),
            "duration": row.get("duration"),
            "duration_group": row.get("duration_group"),
            "topic_category": row.get("topic_category"),
        }


#: ``--format`` name → row converter.
FORMATS: dict[str, Callable[..., Iterator[Row]]] = {
    "videomme": from_videomme,
    "lvbench": from_lvbench,
    "mlvu": from_mlvu,
    "longvideobench": from_longvideobench,
}


def read_rows(path: str | Path) -> list[Mapping]:
    """JSON (a list, or an object of lists) or JSONL rows of a benchmark file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark annotation file {path} does not exist")
    if path.suffix == ".parquet":
        raise ConfigError(
            f"{path}: parquet is not read directly; export it once to JSONL, e.g. with pandas: "
            "pandas.read_parquet(p).to_json(out, orient='records', lines=True)"
        )
    from tempo_kit.data.annotations import read_text

    text = read_text(path)
    if text.lstrip().startswith(("[", "{")) and path.suffix != ".jsonl":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):  # e.g. {"task": [rows]}
            return [row for value in data.values() if isinstance(value, list) for row in value]
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path} line {number} is not valid JSON: {error}") from error
    return rows


def convert_annotations(fmt: str, sources: Iterable[str | Path], out: str | Path) -> Path:
    """Convert one or more benchmark files (e.g. all MLVU task files) into one harness JSONL."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown benchmark format {fmt!r}; use one of {', '.join(FORMATS)}")
    from tempo_kit.atomic import atomic_file

    out = Path(out)
    with atomic_file(out) as handle:
        for source in sources:
            for row in FORMATS[fmt](read_rows(source), where=str(source)):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out
