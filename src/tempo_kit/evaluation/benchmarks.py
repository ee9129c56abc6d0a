"""How the four long-video benchmarks' files map onto the harness's fields, in every variant.

The harness reads ``id, video, question, options, answer[, category, duration]`` (:mod:`.items`).
Each benchmark ships its questions in two shapes — the original release files and the rows
lmms-eval loads, which the released Tempo was evaluated on (compatibility §7) — and the converter
detects the shape row by row:

| benchmark | variant | detected by | options | answer |
|---|---|---|---|---|
| Video-MME | ``lmms-lab/Video-MME`` rows | ``question_id`` | ``options`` (``"A. …"``) | letter |
| Video-MME | official per-video layout | ``questions: [...]`` | same, per question | letter |
| LVBench | ``video_info.meta.jsonl`` | ``qa: [...]`` | ``(A) …`` inside ``question`` | letter |
| LVBench | flat rows (``video_path``) | ``uid`` / ``video_path`` | same | letter |
| MLVU dev | original ``<n>_<task>.json`` | ``question_type`` | ``candidates`` | candidate text |
| MLVU dev | ``sy1998/MLVU_dev`` | ``task_type`` | inside ``question`` (``candidates`` too) | letter |
| LongVideoBench | ``lvb_val.json`` | ``candidates`` | ``candidates`` | ``correct_choice`` index |
| LongVideoBench | HF Parquet (``longvideobench_val_v``) | ``option0`` | ``option0..4``, ``"N/A"`` pads | ``correct_choice`` index |

A row that cannot be a question (no answer among its candidates, an empty question, a missing
field) is skipped with its file and row number, never the whole file. Every converted row keeps
the benchmark's own fields under ``source``, so result records carry them. Categories follow
lmms-eval's names (MLVU's ``findNeedle`` is ``needle``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempo_kit.atomic import write_text
from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.answers import OPTION_LETTERS
from tempo_kit.registry import BENCHMARK_FORMATS, RegistryError

Row = dict[str, Any]

#: MLVU dev's seven multiple-choice tasks as lmms-eval names them; its M-Avg divides by all seven.
MLVU_DEV_TASKS = ("anomaly_reco", "count", "ego", "needle", "order", "plotQA", "topic_reasoning")
#: Original MLVU task names that lmms-eval's rows spell differently.
MLVU_TASK_ALIASES = {"findNeedle": "needle"}
#: MLVU dev task → the folder of its videos in the original release (``MLVU/video/<folder>``).
MLVU_TASK_FOLDERS = {
    "plotQA": "1_plotQA",
    "needle": "2_needle",
    "ego": "3_ego",
    "count": "4_count",
    "order": "5_order",
    "anomaly_reco": "6_anomaly_reco",
    "topic_reasoning": "7_topic_reasoning",
}
#: LongVideoBench's Parquet pads missing options with this text.
LONGVIDEOBENCH_PAD = "N/A"

_INLINE_OPTION = re.compile(r"^\s*\(([A-Z])\)\s*(.*)$")


@dataclass(frozen=True)
class SkippedRow:
    """A row that is not a usable question: where it is and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        separator = " " if self.reason.startswith("(") else ": "  # "row 3 (id 'x'): …"
        return f"{self.where}{separator}{self.reason}"


class _Skip(Exception):
    pass


def _require(row: Mapping, keys: Iterable[str]) -> None:
    missing = [k for k in keys if k not in row or row[k] in (None, "")]
    if missing:
        raise _Skip(f"missing field(s) {', '.join(missing)} (has {', '.join(sorted(map(str, row)))})")


def _letter(index: Any, num_options: int) -> str:
    if not 0 <= int(index) < num_options:
        raise _Skip(f"answer index {index} is outside the {num_options} options")
    return OPTION_LETTERS[int(index)]


def split_inline_options(text: str) -> tuple[str, list[str]]:
    """``"Q?\\n(A) x\\n(B) y"`` → ``("Q?", [x, y])`` (LVBench and MLVU_dev write options inline)."""
    question_lines, options = [], []
    for line in text.splitlines():
        match = _INLINE_OPTION.match(line)
        if match and match.group(1) == OPTION_LETTERS[len(options)]:
            options.append(match.group(2).strip())
        elif options and line.strip():
            options[-1] += " " + line.strip()
        elif not options:
            question_lines.append(line)
    if len(options) < 2:
        raise _Skip(f"found {len(options)} '(A) …' option lines in the question {text[:80]!r}")
    return "\n".join(question_lines).strip(), options


def _videomme_question(video: Mapping, qa: Mapping, source: Mapping) -> Row:
    _require(qa, ("question_id", "question", "options", "answer"))
    video_id = video.get("videoID") or str(video.get("url", "")).rpartition("v=")[2]
    if not video_id:
        raise _Skip("missing field videoID (the YouTube id that names the video file)")
    return {
        "id": str(qa["question_id"]),
        "video": f"{video_id}.mp4",
        "question": qa["question"],
        "options": list(qa["options"]),
        "answer": str(qa["answer"]).strip(),
        "category": qa.get("task_type"),
        "duration": video.get("duration"),
        "source": dict(source),
    }


@BENCHMARK_FORMATS.register("videomme")
def from_videomme(row: Mapping) -> Iterator[Row]:
    """Video-MME: ``lmms-lab/Video-MME`` rows, or the official layout (one video, its ``questions``)."""
    if "questions" in row:
        video = {k: v for k, v in row.items() if k != "questions"}
        for qa in row["questions"]:
            yield _videomme_question(row, qa, {**video, **qa})
    else:
        yield _videomme_question(row, row, row)


def _lvbench_question(qa: Mapping, video: Mapping, key: Any, source: Mapping) -> Row:
    _require(qa, ("question", "answer"))
    uid = qa.get("uid", qa.get("question_id"))
    if uid in (None, ""):
        raise _Skip("missing field uid")
    if qa.get("options"):
        question, options, inline = qa["question"], list(qa["options"]), None
    else:
        question, options = split_inline_options(qa["question"])
        inline = qa["question"]
    types = qa.get("question_type") or []
    types = [types] if isinstance(types, str) else list(types)
    info = video.get("video_info") or {}
    minutes = info.get("duration_minutes")
    duration = video.get("duration", None if minutes is None else float(minutes) * 60.0)
    path = qa.get("video_path") or video.get("video_path") or f"{key}.mp4"
    return {
        "id": str(uid),
        "video": str(path),
        "question": question,
        "options": options,
        "answer": str(qa["answer"]).strip().strip("()"),
        "category": types[0] if types else None,
        "duration": duration,
        "question_types": types,
        "question_with_options": inline,
        "source": dict(source),
    }


@BENCHMARK_FORMATS.register("lvbench")
def from_lvbench(row: Mapping) -> Iterator[Row]:
    """LVBench: ``video_info.meta.jsonl`` (one video, its ``qa``), or flat rows with ``video_path``."""
    if "qa" in row:
        _require(row, ("key",))
        video = {k: v for k, v in row.items() if k != "qa"}
        for qa in row["qa"]:
            yield _lvbench_question(qa, row, row["key"], {**video, **qa})
    else:
        if not (row.get("video_path") or row.get("key")):
            raise _Skip("missing field video_path (or key)")
        yield _lvbench_question(row, row, row.get("key"), row)


@BENCHMARK_FORMATS.register("mlvu")
def from_mlvu(row: Mapping) -> Iterator[Row]:
    """MLVU dev: the original task files (answer = candidate text) or ``sy1998/MLVU_dev`` rows
    (``video_name``, options inside ``question``, answer = letter, ``task_type``)."""
    if "task_type" in row:  # sy1998/MLVU_dev
        _require(row, ("video_name", "question", "answer", "task_type"))
        question, options = split_inline_options(row["question"])
        answer = str(row["answer"]).strip().strip("()")
        task = MLVU_TASK_ALIASES.get(str(row["task_type"]), str(row["task_type"]))
        yield {
            "id": str(row.get("question_id") or f"{task}_{row['video_name']}"),
            "video": str(row["video_name"]),
            "question": question,
            "options": options,
            "answer": answer,
            "category": task,
            "duration": row.get("duration"),
            "question_with_options": row["question"],
            "source": dict(row),
        }
        return
    _require(row, ("video", "question", "candidates", "answer", "question_type"))
    task = MLVU_TASK_ALIASES.get(str(row["question_type"]), str(row["question_type"]))
    candidates = [str(c) for c in row["candidates"]]
    matches = [i for i, c in enumerate(candidates) if c == str(row["answer"])]
    if not matches:
        raise _Skip(f"answer {row['answer']!r} is not one of the candidates {candidates}")
    yield {
        "id": None,  # numbered per task by the caller
        "video": f"{MLVU_TASK_FOLDERS.get(task, task)}/{row['video']}",
        "question": row["question"],
        "options": candidates,
        "answer": OPTION_LETTERS[matches[-1]],  # the official scorer takes the last match
        "category": task,
        "duration": row.get("duration"),
        "source": dict(row),
    }


@BENCHMARK_FORMATS.register("longvideobench")
def from_longvideobench(row: Mapping) -> Iterator[Row]:
    """LongVideoBench: ``lvb_val.json`` (``candidates``) or the HF Parquet (``option0..4``)."""
    _require(row, ("id", "video_path", "question", "correct_choice"))
    if "candidates" in row:
        candidates = [str(c) for c in row["candidates"]]
    else:
        candidates = []
        for i in range(len(OPTION_LETTERS)):
            option = row.get(f"option{i}")
            if option is None or option == LONGVIDEOBENCH_PAD:
                break
            candidates.append(str(option))
    yield {
        "id": str(row["id"]),
        "video": str(row["video_path"]),
        "question": row["question"],
        "options": candidates,
        "answer": _letter(row["correct_choice"], len(candidates)),
        "category": row.get("question_category"),
        "duration": row.get("duration"),
        "duration_group": row.get("duration_group"),
        "source": dict(row),
    }


def convert_rows(fmt: str, path: str | Path) -> Iterator[Row | SkippedRow]:
    """Harness rows of one benchmark file; an unusable row comes out as a :class:`SkippedRow`.

    Raises:
        ConfigError: ``fmt`` is not a registered format, or the file cannot be read as rows.
    """
    from tempo_kit.data.rows import AnnotationError, read_rows

    convert = check_format(fmt)
    try:
        rows = read_rows(path)
    except AnnotationError as error:
        raise ConfigError(str(error)) from None
    counters: dict[str, int] = {}
    for number, row in rows:
        where = f"{path} row {number}"
        if isinstance(row, AnnotationError):
            yield SkippedRow(where, str(row).removeprefix(f"{path}:{number}: "))
            continue
        if not isinstance(row, Mapping):
            yield SkippedRow(where, f"expected an object, got {type(row).__name__}")
            continue
        try:
            converted = list(convert(row))
        except _Skip as skip:
            yield SkippedRow(where, str(skip))
            continue
        except (TypeError, ValueError, KeyError) as error:
            yield SkippedRow(where, f"{type(error).__name__}: {error}")
            continue
        for out in converted:
            if out["id"] is None:
                counters[out["category"]] = counters.get(out["category"], 0) + 1
                out["id"] = f"{out['category']}_{counters[out['category']]}"
            out["where"] = where
            yield out


def check_format(fmt: str) -> Callable[[Mapping], Iterator[Row]]:
    """The converter registered as ``fmt`` in :data:`~tempo_kit.registry.BENCHMARK_FORMATS`, or a
    :class:`ConfigError` naming the known formats."""
    try:
        return BENCHMARK_FORMATS.get(fmt)
    except RegistryError as error:
        raise ConfigError(f"--format {fmt!r}: {error} Or use kit: the harness's own fields.") from None


def convert_annotations(fmt: str, sources: Iterable[str | Path], out: str | Path) -> tuple[Path, list[SkippedRow]]:
    """Convert benchmark files (e.g. all MLVU task files) into one harness JSONL, written atomically.

    Returns:
        the file, and the rows skipped (each naming its file and row).
    """
    lines, skipped = [], []
    for source in sources:
        for row in convert_rows(fmt, source):
            if isinstance(row, SkippedRow):
                skipped.append(row)
            else:
                lines.append(json.dumps({k: v for k, v in row.items() if k != "where"}, ensure_ascii=False))
    if not lines:
        raise ConfigError(f"no usable {fmt} question in {', '.join(map(str, sources))}: {skipped[:3]}")
    return write_text(out, "".join(line + "\n" for line in lines)), skipped
