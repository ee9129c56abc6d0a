"""The resumable multiple-choice harness: items in, one JSONL record per answered item out.

The harness knows nothing about models: it calls an :class:`AnswerFn` (``(item, prompt) ->
Reply``) for each item, reads the letter out of the reply, and appends one self-contained JSON
line per item to a results file, flushed and fsynced before the next item starts. A rerun reads
that file back and skips every item already answered, so a crash at item 900 of 1000 loses at
most the item in flight. The summary is computed from the file, not from memory, so it is the
same whether the run was interrupted or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.evaluation.answers import extract_choice
from tempo_kit.evaluation.items import BenchmarkItem, format_prompt
from tempo_kit.evaluation.journal import append_record, open_journal, read_journal
from tempo_kit.evaluation.metrics import (
    DEFAULT_DURATION_BUCKETS,
    ChoiceAccuracy,
    benchmark_scores,
    token_statistics,
)

#: Version of the record layout written to results files.
RECORD_VERSION = 2


@dataclass
class Reply:
    """What an answer function returns for one item.

    Attributes:
        text: the model's reply.
        tokens: token statistics — ``visual_tokens``, ``budget``, ``num_frames``,
            ``tokens_per_frame``, ``num_segments``, ``kept_segments`` (any subset).
        timings: seconds per phase (``decode``, ``compress``, ``allocate``, ``generate``).
        info: anything else worth keeping with the record (e.g. which phases were reused).
    """

    text: str
    tokens: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class AnswerFn(Protocol):
    """Answers one item given the formatted prompt; raise a ``TempoKitError`` for a bad item."""

    def __call__(self, item: BenchmarkItem, prompt: str) -> Reply: ...


def read_results(path: str | Path, repair: bool = False) -> list[dict]:
    """The records of one results file (see :func:`~tempo_kit.evaluation.journal.read_journal`)."""
    return read_journal(path, repair=repair)


def shard_path(path: str | Path, shard: tuple[int, int]) -> Path:
    """The results file one process of ``(rank, world_size)`` writes: ``run.jsonl`` alone,
    ``run.rank1.jsonl`` for rank 1 of several."""
    path = Path(path)
    rank, world = shard
    return path if world == 1 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def results_files(path: str | Path) -> list[Path]:
    """Every file holding records of one setting: the single-process file and every rank's."""
    path = Path(path)
    shards = sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))
    return [p for p in [path, *shards] if p.is_file()]


def read_setting_results(path: str | Path) -> list[dict]:
    """The records of a setting from all its files (a rerun may use another number of processes)."""
    return [record for file in results_files(path) for record in read_journal(file)]


def latest_by_id(records: Iterable[Mapping]) -> dict[str, dict]:
    """The last record of each item id (a retried item supersedes its failed attempt)."""
    out: dict[str, dict] = {}
    for record in records:
        out[str(record["id"])] = dict(record)
    return out


def summarize(
    records: Iterable[Mapping],
    duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
    fmt: str = "kit",
) -> dict:
    """Accuracy (per-sample and per-category mean, per category, per duration bucket), the
    benchmark's own numbers (``benchmark``, see :func:`~tempo_kit.evaluation.metrics.benchmark_scores`),
    token statistics and error count over results records (last record per id)."""
    latest = list(latest_by_id(records).values())
    metric = ChoiceAccuracy(duration_buckets)
    for record in latest:
        metric.update(
            record.get("prediction"), record["answer"], record.get("category"), record.get("duration")
        )
    summary = metric.compute()
    summary["benchmark"] = benchmark_scores(fmt, latest)
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


@dataclass
class Run:
    """One setting of a sweep: its answer function, its results file and what it is."""

    answer_fn: AnswerFn
    results_path: str | Path
    setting: Mapping[str, Any] = field(default_factory=dict)
    name: str = "eval"


class _RunState:
    """A run's locked results file, what it still has to answer, and its running accuracy.

    A previous record is reused only for the same prompt and options; a record whose answer
    letter no longer matches the annotation (a corrected answer) is rescored from its stored
    reply, not trusted, and not asked again.
    """

    def __init__(
        self,
        run: Run,
        items: Sequence[BenchmarkItem],
        prompts: Mapping[str, str],
        retry_errors: bool,
        overwrite: bool,
        duration_buckets: Sequence[tuple[float, str]],
        shard: tuple[int, int],
    ) -> None:
        self.run = run
        self.setting = dict(run.setting)
        self.path = Path(run.results_path)
        self.handle = open_journal(shard_path(self.path, shard))
        previous: list[dict] = []
        if overwrite:  # each rank empties its own file; rank 0 removes files no rank of this run owns
            self.handle.truncate(0)
            owned = {shard_path(self.path, (rank, shard[1])) for rank in range(shard[1])}
            for other in results_files(self.path):
                if shard[0] == 0 and other not in owned:
                    other.unlink()
        else:
            previous = read_setting_results(self.path)
        _check_setting(self.path, previous, self.setting)
        done = latest_by_id(previous)
        self.todo: set[str] = set()
        self.metric = ChoiceAccuracy(duration_buckets)
        for item in items:
            record = done.get(item.id)
            if (
                record is None
                or (retry_errors and record.get("error"))
                or record.get("prompt", prompts[item.id]) != prompts[item.id]
                or record.get("options") != item.options
            ):
                self.todo.add(item.id)
                continue
            if record["answer"] != item.answer:
                record = _rescored(record, item)
                self.write(record)
            self.metric.update(record.get("prediction"), item.answer, item.category, item.duration)
        self.finished = len(items) - len(self.todo)

    def write(self, record: Mapping[str, Any]) -> None:
        append_record(self.handle, record)  # on disk before the next item starts: a kill loses nothing


def _rescored(record: Mapping[str, Any], item: BenchmarkItem) -> dict[str, Any]:
    """The record of an item whose annotated answer changed, scored against the new answer."""
    info = {**record.get("info", {}), "rescored_from_answer": record["answer"]}
    return {
        **record,
        **_item_fields(item),
        "correct": record.get("prediction") == item.answer,
        "info": info,
    }


def _item_fields(item: BenchmarkItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "video": item.video,
        "question": item.question,
        "options": item.options,
        "answer": item.answer,
        "category": item.category,
        "duration": item.duration,
        "fields": item.extra,
    }


def _answer(item: BenchmarkItem, prompt: str, state: _RunState, on_error: str) -> dict[str, Any]:
    start = time.perf_counter()
    error = None
    try:
        reply = state.run.answer_fn(item, prompt)
    except TempoKitError as exc:
        if on_error == "raise":
            raise
        reply, error = Reply(text=""), f"{type(exc).__name__}: {exc}"
    prediction = extract_choice(reply.text, item.num_options, item.options) if not error else None
    return {
        **_item_fields(item),
        "prompt": prompt,
        "response": reply.text,
        "prediction": prediction,
        "correct": prediction == item.answer,
        "tokens": reply.tokens,
        "timings": {**reply.timings, "total": time.perf_counter() - start},
        "info": reply.info,
        "setting": state.setting,
        "error": error,
        "version": RECORD_VERSION,
    }


def run_sweep(
    items: Sequence[BenchmarkItem],
    runs: Sequence[Run],
    *,
    prompt_fn: Callable[[BenchmarkItem], str] = format_prompt,
    retry_errors: bool = True,
    on_error: str = "record",
    overwrite: bool = False,
    duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
    progress: bool = True,
    description: str = "eval",
    fmt: str = "kit",
    shard: tuple[int, int] = (0, 1),
) -> list[dict]:
    """Answer every item of every run that its results file does not hold yet; one summary per run.

    Items are the outer loop and runs the inner one, so an answer function that keeps the last
    video's decoded frames and compressed memory (``TempoPipeline(reuse_last_video=True)``)
    decodes and compresses each video once for all the settings that share them.

    Args:
        items: the questions (see :func:`~tempo_kit.evaluation.items.load_items`).
        runs: the settings, each with its ``(item, prompt) -> Reply`` and its JSONL results file
            (appended to; created with its folder). A results file written under another setting
            is refused rather than mixed.
        prompt_fn: builds the question text from an item.
        retry_errors: rerun items whose previous record holds an error (e.g. a video that was
            missing and has since been restored).
        on_error: ``"record"`` writes a failed item (a ``TempoKitError`` such as an unreadable
            video) as wrong with its error and goes on; ``"raise"`` stops.
        overwrite: delete existing results files first.
        fmt: the benchmark, for its own numbers in the summary (:func:`summarize`).
        shard: ``(rank, world_size)``: this process answers items ``rank::world_size`` into its
            own file (:func:`shard_path`); the summary reads every rank's file, so it is complete
            once all ranks are done (:func:`summarize_runs` after a barrier).
    """
    if on_error not in ("record", "raise"):
        raise ConfigError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    paths = [str(Path(r.results_path).resolve()) for r in runs]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"two runs of a sweep write the same results file: {paths}")
    all_items = items
    items = list(items)[shard[0] :: shard[1]]
    prompts = {item.id: prompt_fn(item) for item in items}
    states: list[_RunState] = []
    try:
        for run in runs:
            states.append(_RunState(run, items, prompts, retry_errors, overwrite, duration_buckets, shard))
        total = len(items) * len(states)
        finished = sum(s.finished for s in states)
        with tqdm(
            total=total,
            initial=finished,
            desc=description,
            unit="q",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            for item in items:
                pending = [s for s in states if item.id in s.todo]
                if not pending:
                    continue
                prompt = prompts[item.id]
                for state in pending:
                    record = _answer(item, prompt, state, on_error)
                    state.write(record)
                    state.metric.update(record["prediction"], item.answer, item.category, item.duration)
                    bar.update(1)
                    if len(states) == 1:
                        bar.set_postfix(acc=f"{float(state.metric.overall.compute()):.3f}")
    finally:
        for state in states:
            state.handle.close()

    summaries = summarize_runs(all_items, runs, fmt=fmt, duration_buckets=duration_buckets)
    for summary, state in zip(summaries, states):
        summary["resumed"] = state.finished
    return summaries


def summarize_runs(
    items: Sequence[BenchmarkItem],
    runs: Sequence[Run],
    *,
    fmt: str = "kit",
    duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
) -> list[dict]:
    """One summary per run over ``items``, from every file of its setting (all ranks merged)."""
    answers = {item.id: item.answer for item in items}
    summaries = []
    for run in runs:
        records = [r for r in read_setting_results(run.results_path) if str(r["id"]) in answers]
        records = [r for r in latest_by_id(records).values() if r["answer"] == answers[r["id"]]]
        summary = summarize(records, duration_buckets, fmt=fmt)
        summary.update(setting=dict(run.setting), results=str(run.results_path), missing=len(answers) - len(records))
        summaries.append(summary)
    return summaries


def run_benchmark(
    items: Sequence[BenchmarkItem],
    answer_fn: AnswerFn,
    results_path: str | Path,
    *,
    setting: Mapping[str, Any] | None = None,
    description: str = "eval",
    **kwargs: Any,
) -> dict:
    """One setting: answer every item not yet in ``results_path``; the summary over all of them.

    Keyword arguments are those of :func:`run_sweep`. A rerun resumes the file: items already
    answered are skipped, a last line cut short by a crash is dropped.
    """
    (summary,) = run_sweep(
        items,
        [Run(answer_fn, results_path, dict(setting or {}), description)],
        description=description,
        **kwargs,
    )
    return summary
