"""The resumable multiple-choice harness: items in, one JSONL record per answered item out.

The harness knows nothing about models: it calls an :class:`AnswerFn` (``(item, prompt) ->
Reply``) for each item, reads the letter out of the reply, and appends one self-contained JSON
line per item to a results file, flushed and fsynced before the next item starts. A rerun reads
that file back and skips every item already answered, so a crash at item 900 of 1000 loses at
most the item in flight. The summary is computed from the file, not from memory, so it is the
same whether the run was interrupted or not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.evaluation.answers import extract_choice
from tempo_kit.evaluation.items import BenchmarkItem, format_prompt
from tempo_kit.evaluation.metrics import DEFAULT_DURATION_BUCKETS, ChoiceAccuracy, token_statistics

#: Version of the record layout written to results files.
RECORD_VERSION = 1


@dataclass
class Reply:
    """What an answer function returns for one item.

    Attributes:
        text: the model's reply.
        tokens: token statistics — ``visual_tokens``, ``budget``, ``num_frames``,
            ``tokens_per_frame``, ``num_segments``, ``kept_segments`` (any subset).
        timings: seconds per phase (``decode``, ``compress``, ``allocate``, ``generate``).
    """

    text: str
    tokens: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class AnswerFn(Protocol):
    """Answers one item given the formatted prompt; raise a ``TempoKitError`` for a bad item."""

    def __call__(self, item: BenchmarkItem, prompt: str) -> Reply: ...


def read_results(path: str | Path, repair: bool = False) -> list[dict]:
    """The records of a results file, in order. A last line cut short by a crash is ignored
    (and, with ``repair``, cut off the file so appending continues on a clean line)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as handle:
            handle.truncate(len(complete))
    records = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"results file {path} line {number} is not valid JSON ({error}); "
                "remove that line or start a new results file"
            ) from error
    return records


def latest_by_id(records: Iterable[Mapping]) -> dict[str, dict]:
    """The last record of each item id (a retried item supersedes its failed attempt)."""
    out: dict[str, dict] = {}
    for record in records:
        out[str(record["id"])] = dict(record)
    return out


def summarize(
    records: Iterable[Mapping],
    duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
) -> dict:
    """Accuracy (per-sample and per-category mean, per category, per duration bucket), token
    statistics and error count over results records (last record per id)."""
    latest = list(latest_by_id(records).values())
    metric = ChoiceAccuracy(duration_buckets)
    for record in latest:
        metric.update(
            record.get("prediction"), record["answer"], record.get("category"), record.get("duration")
        )
    summary = metric.compute()
    summary["errors"] = sum(1 for r in latest if r.get("error"))
    summary["tokens"] = token_statistics(r for r in latest if not r.get("error"))
    return summary


def _check_setting(path: Path, records: Sequence[Mapping], setting: Mapping[str, Any]) -> None:
    for record in records:
        previous = record.get("setting", {})
        if previous != dict(setting):
            changed = sorted(k for k in set(previous) | set(setting) if previous.get(k) != setting.get(k))
            details = ", ".join(f"{k}: {previous.get(k)!r} → {setting.get(k)!r}" for k in changed)
            raise ConfigError(
                f"results file {path} was written with another setting ({details}); resuming would mix "
                "them. Use another output path, or --overwrite to start over."
            )


def run_benchmark(
    items: Sequence[BenchmarkItem],
    answer_fn: AnswerFn,
    results_path: str | Path,
    *,
    setting: Mapping[str, Any] | None = None,
    prompt_fn: Callable[[BenchmarkItem], str] = format_prompt,
    retry_errors: bool = True,
    on_error: str = "record",
    overwrite: bool = False,
    duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
    progress: bool = True,
    description: str = "eval",
) -> dict:
    """Answer every item not yet in ``results_path`` and return the summary over all of them.

    Args:
        items: the questions (see :func:`~tempo_kit.evaluation.items.load_items`).
        answer_fn: ``(item, prompt) -> Reply``.
        results_path: JSONL file, appended to; created with its folder if missing.
        setting: what the run is (budget, allocator, …); stored in every record, and a rerun
            with another setting refuses to resume the same file.
        prompt_fn: builds the question text from an item.
        retry_errors: rerun items whose previous record holds an error (e.g. a video that was
            missing and has since been restored).
        on_error: ``"record"`` writes a failed item (a ``TempoKitError`` such as an unreadable
            video) as wrong with its error and goes on; ``"raise"`` stops.
        overwrite: delete an existing results file first.
    """
    if on_error not in ("record", "raise"):
        raise ConfigError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    setting = dict(setting or {})
    path = Path(results_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite and path.exists():
        path.unlink()
    previous = read_results(path, repair=True)
    _check_setting(path, previous, setting)
    done = latest_by_id(previous)
    wanted = {item.id for item in items}
    todo = [item for item in items if item.id not in done or (retry_errors and done[item.id].get("error"))]
    finished = len(items) - len(todo)

    metric = ChoiceAccuracy(duration_buckets)
    for record in done.values():
        if record["id"] in wanted and not (retry_errors and record.get("error")):
            metric.update(
                record.get("prediction"), record["answer"], record.get("category"), record.get("duration")
            )

    with (
        path.open("a", encoding="utf-8") as handle,
        tqdm(
            total=len(items),
            initial=finished,
            desc=description,
            unit="q",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar,
    ):
        for item in todo:
            prompt = prompt_fn(item)
            start = time.perf_counter()
            error = None
            try:
                reply = answer_fn(item, prompt)
            except TempoKitError as exc:
                if on_error == "raise":
                    raise
                reply, error = Reply(text=""), f"{type(exc).__name__}: {exc}"
            prediction = extract_choice(reply.text, item.num_options, item.options) if not error else None
            record = {
                "id": item.id,
                "video": item.video,
                "question": item.question,
                "options": item.options,
                "answer": item.answer,
                "category": item.category,
                "duration": item.duration,
                "response": reply.text,
                "prediction": prediction,
                "correct": prediction == item.answer,
                "tokens": reply.tokens,
                "timings": {**reply.timings, "total": time.perf_counter() - start},
                "setting": setting,
                "error": error,
                "version": RECORD_VERSION,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            metric.update(prediction, item.answer, item.category, item.duration)
            bar.update(1)
            bar.set_postfix(acc=f"{float(metric.overall.compute()):.3f}")

    records = [r for r in read_results(path) if str(r["id"]) in wanted]
    summary = summarize(records, duration_buckets)
    summary["setting"] = setting
    summary["results"] = str(path)
    summary["resumed"] = finished
    return summary
