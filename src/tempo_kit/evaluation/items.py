"""Benchmark items: the harness's annotation fields, read and checked once, and the MC prompt.

An annotation file is JSON (a list) or JSONL (one object a line), one multiple-choice question a
row, with the kit's annotation fields: ``id``, ``video`` (relative to a media root), ``question``,
``options`` (list of strings, letters implied A, B, …), ``answer`` (a letter), and optional
``category`` and ``duration`` (seconds, or a label like ``"long"``). :mod:`.benchmarks` turns the
public benchmarks' own files into this form.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.answers import valid_letters
from tempo_kit.evaluation.benchmarks import SkippedRow

#: Instruction before the question (lmms-eval's wording for video multiple choice).
DEFAULT_PRE_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter of the correct option."
)
#: Instruction after the options (lmms-eval's ``post_prompt``).
DEFAULT_POST_PROMPT = "Answer with the option's letter from the given choices directly."

_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Z])[\).:]\s+")


@dataclass
class BenchmarkItem:
    """One multiple-choice question about one video."""

    id: str
    video: str
    question: str
    options: list[str]
    answer: str
    category: str | None = None
    duration: float | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_options(self) -> int:
        return len(self.options)


def strip_option_prefix(option: str, letter: str) -> str:
    """``"B. a red circle"`` → ``"a red circle"`` when the prefix is the option's own letter
    (Video-MME and MLVU ship options with their letters)."""
    match = _OPTION_PREFIX.match(option)
    if match and match.group(1) == letter:
        return option[match.end() :]
    return option


def format_prompt(
    item: BenchmarkItem,
    pre_prompt: str = DEFAULT_PRE_PROMPT,
    post_prompt: str = DEFAULT_POST_PROMPT,
) -> str:
    """The text the model is asked: instruction, question, ``A. option`` lines, instruction."""
    letters = valid_letters(item.num_options)
    lines = [pre_prompt] if pre_prompt else []
    lines.append(item.question.strip())
    lines += [f"{letter}. {option}" for letter, option in zip(letters, item.options)]
    if post_prompt:
        lines.append(post_prompt)
    return "\n".join(lines)


def item_from_row(row: Mapping, media_root: Path | None, where: str) -> BenchmarkItem:
    """Check one annotation row and make it an item; errors name ``where`` and the field."""
    if not isinstance(row, Mapping):
        raise ConfigError(f"{where}: expected an object with id/video/question/options/answer, got {row!r}")
    missing = [k for k in ("id", "video", "question", "options", "answer") if row.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"{where} (id {row.get('id')!r}): missing field(s) {', '.join(missing)}")
    if not isinstance(row["question"], (str, int, float)) or isinstance(row["question"], bool):
        raise ConfigError(
            f"{where} (id {row['id']!r}): question is {row['question']!r}; a question is plain text "
            "(pick one language's text from a translated row)"
        )
    options = row["options"]
    if not isinstance(options, list) or not 2 <= len(options) <= 26:
        raise ConfigError(f"{where} (id {row['id']!r}): 'options' must be a list of 2 to 26 strings")
    for number, option in enumerate(options, start=1):
        if isinstance(option, bool) or not isinstance(option, (str, int, float)):
            raise ConfigError(
                f"{where} (id {row['id']!r}): option {number} is {option!r}; options are plain strings"
            )
    letters = valid_letters(len(options))
    answer = str(row["answer"]).strip().strip("().").upper()
    if answer not in letters:
        raise ConfigError(
            f"{where} (id {row['id']!r}): answer {row['answer']!r} is not one of the option letters "
            f"{', '.join(letters)}; convert the benchmark's answer to a letter (see tempo_kit.evaluation.benchmarks)"
        )
    video = Path(str(row["video"]))
    if media_root is not None and not video.is_absolute():
        video = media_root / video
    known = {"id", "video", "question", "options", "answer", "category", "duration"}
    return BenchmarkItem(
        id=str(row["id"]),
        video=str(video),
        question=str(row["question"]),
        options=[strip_option_prefix(str(o), letter) for o, letter in zip(options, letters)],
        answer=answer,
        category=None if row.get("category") in (None, "") else str(row["category"]),
        duration=row.get("duration"),
        extra={k: v for k, v in row.items() if k not in known},
    )


@dataclass
class Benchmark:
    """The questions of an annotation file, and the rows that could not be questions."""

    items: list[BenchmarkItem]
    skipped: list[SkippedRow]
    fmt: str


#: Annotation files a folder given as ``--annotations`` contributes (MLVU ships ``json/<n>_<task>.json``).
ANNOTATION_SUFFIXES = (".json", ".jsonl", ".parquet")


def annotation_files(path: Path) -> list[Path]:
    """``[path]``, or a folder's annotation files in name order (one run over all of them)."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in ANNOTATION_SUFFIXES)
    if not files:
        raise ConfigError(f"annotation folder {path} holds no {', '.join(ANNOTATION_SUFFIXES)} file")
    return files


def load_benchmark(
    path: str | Path,
    media_root: str | Path | None = None,
    limit: int | None = None,
    fmt: str = "kit",
) -> Benchmark:
    """Read an annotation file; a bad row (or a repeated id) is skipped and named, not fatal.

    Args:
        path: JSON list, JSONL or (benchmark formats) Parquet; or a folder of such files, read
            in name order as one benchmark (MLVU's ``json/`` folder of seven task files).
        media_root: folder the ``video`` paths are relative to (default: the file's folder, or
            the folder given).
        limit: keep the first ``limit`` questions (a quick smoke run).
        fmt: ``"kit"`` (the harness fields) or a benchmark's own format
            (``videomme``, ``lvbench``, ``mlvu``, ``longvideobench``; see :mod:`.benchmarks`).
    """
    from tempo_kit.data.rows import AnnotationError, read_rows
    from tempo_kit.evaluation.benchmarks import convert_rows

    path = Path(path)
    root = Path(media_root) if media_root is not None else path if path.is_dir() else path.parent

    def kit_rows(path: Path):
        try:
            raw = read_rows(path)
        except AnnotationError as error:
            raise ConfigError(str(error)) from error
        return (
            SkippedRow(f"{path} row {n}", str(row).removeprefix(f"{path}:{n}: "))
            if isinstance(row, AnnotationError)
            else {**row, "where": f"{path} row {n}"} if isinstance(row, Mapping)
            else SkippedRow(f"{path} row {n}", f"expected an object, got {row!r}")
            for n, row in raw
        )

    # an unknown format is refused in convert_rows, naming the known ones
    read = kit_rows if fmt == "kit" else lambda file: convert_rows(fmt, file)
    rows = itertools.chain.from_iterable(read(file) for file in annotation_files(path))
    items: list[BenchmarkItem] = []
    skipped: list[SkippedRow] = []
    seen: dict[str, str] = {}
    for row in rows:
        if isinstance(row, SkippedRow):
            skipped.append(row)
            continue
        where = row.pop("where")
        try:
            item = item_from_row(row, root, where)
        except ConfigError as error:
            skipped.append(SkippedRow(where, str(error).removeprefix(where).lstrip(": ")))
            continue
        if item.id in seen:
            skipped.append(SkippedRow(where, f"id {item.id!r} already used by {seen[item.id]}; ids must be unique"))
            continue
        seen[item.id] = where
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        reasons = "; ".join(map(str, skipped[:3])) or "the file is empty"
        raise ConfigError(f"annotation file {path} holds no usable question ({reasons})")
    return Benchmark(items, skipped, fmt)


def load_items(
    path: str | Path,
    media_root: str | Path | None = None,
    limit: int | None = None,
    fmt: str = "kit",
) -> list[BenchmarkItem]:
    """The questions of :func:`load_benchmark`, warning once for each skipped row."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r}: give a positive number of questions, or no limit for all")
    benchmark = load_benchmark(path, media_root, limit, fmt)
    for skip in benchmark.skipped:
        warnings.warn(f"skipped {skip}", stacklevel=2)
    return benchmark.items
