"""Open-ended answers for every row of an annotation file: ``tempo-kit predict``.

Lightning's ``predict`` and lmms-eval's generation tasks, for Tempo: each row's video and
question go through the public pipeline (``pipe.answer``), and one JSON line per row records the
prediction, the reference answer when the row has one, the per-segment allocation and the timings.
The results file is the harness's journal (:mod:`~tempo_kit.evaluation.journal`): a killed run
loses at most the row in flight and a rerun answers only the rows not yet answered with the same
setting; under ``torchrun`` rank r answers rows ``r::world`` into its own file
(:func:`~tempo_kit.evaluation.harness.shard_path`) and rank 0 writes the summary.

Rows are the kit's training rows (``video`` + ``conversations``: the first human turn is the
question, the first gpt turn the reference) or evaluation rows (``video``, ``question`` and
optionally ``answer``); the question is asked as written (options, if any, are not added).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempo_kit.data.rows import read_rows
from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.evaluation.harness import _check_setting, latest_by_id, read_setting_results, shard_path
from tempo_kit.evaluation.journal import append_record, open_journal
from tempo_kit.model.prompts import strip_media_placeholders

#: The results file inside the output folder (rank r of several writes ``predictions.rank<r>.jsonl``).
PREDICTIONS_FILE = "predictions.jsonl"
#: The summary rank 0 writes once every row is answered.
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class PredictRow:
    """One row to answer."""

    id: str
    video: str
    query: str
    reference: str | None
    where: str


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_predict_row(row: Any, where: str, media_root: Path) -> PredictRow:
    """A row's video, question and reference, or a :class:`ConfigError` naming the row and field."""
    if not isinstance(row, Mapping):
        raise ConfigError(f"{where}: a row must be a JSON object with 'video' and a question")
    video = _text(row.get("video"))
    if video is None:
        raise ConfigError(f"{where}: 'video' must be a non-empty path string, got {row.get('video')!r}")
    turns = row.get("conversations") if isinstance(row.get("conversations"), list) else []
    human = [t.get("value") for t in turns if isinstance(t, Mapping) and t.get("from") in ("human", "user")]
    gpt = [t.get("value") for t in turns if isinstance(t, Mapping) and t.get("from") in ("gpt", "assistant")]
    if "question" in row and _text(row.get("question")) is None:
        raise ConfigError(f"{where}: 'question' must be a non-empty string, got {row.get('question')!r}")
    query = _text(row.get("question")) or (_text(strip_media_placeholders(human[0])) if human and isinstance(human[0], str) else None)
    if query is None:
        raise ConfigError(f"{where}: no question: give 'question' or a 'conversations' list starting with a human turn")
    reference = row.get("answer", gpt[0] if gpt else None)
    path = Path(video)
    return PredictRow(
        id=str(row.get("id", where)),
        video=str(path if path.is_absolute() else media_root / path),
        query=query,
        reference=None if reference is None else str(reference),
        where=where,
    )


def load_predict_rows(path: str | Path, media_root: str | Path | None = None) -> tuple[list[PredictRow], list[str]]:
    """The usable rows of ``path`` and one line per skipped row saying why (ids must be unique)."""
    path = Path(path)
    root = Path(media_root) if media_root is not None else path.parent
    rows, skipped, seen = [], [], set()
    for number, row in read_rows(path):
        where = f"{path}:{number}"
        try:
            if isinstance(row, Exception):
                raise ConfigError(str(row))
            parsed = parse_predict_row(row, where, root)
        except TempoKitError as error:
            skipped.append(str(error))
            continue
        if not Path(parsed.video).is_file():
            skipped.append(f"{where}: video file not found: {parsed.video}")
            continue
        if parsed.id in seen:
            raise ConfigError(f"{where}: id {parsed.id!r} appears twice; ids must be unique to resume")
        seen.add(parsed.id)
        rows.append(parsed)
    return rows, skipped


def normalized(text: str | None) -> str:
    """Lower-case words without punctuation: ``"Red."`` and ``"red"`` match."""
    return " ".join(re.findall(r"\w+", (text or "").lower()))


def row_record(row: PredictRow, result: Any, setting: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON line of one answered row (``result``: the pipeline's ``InferenceResult``)."""
    info = result.to_dict()
    record = {
        "id": row.id,
        "video": row.video,
        "query": row.query,
        "prediction": result.answer,
        "reference": row.reference,
        "tokens": info["tokens"],
        "timings": info["timings"],
        "segments": info["segments"],
        "duration": info["duration"],
        "setting": dict(setting),
    }
    if row.reference is not None:
        record["exact_match"] = normalized(result.answer) == normalized(row.reference)
    return record


def predict(
    answer: Callable[[PredictRow], Any],
    rows: Iterable[PredictRow],
    output: str | Path,
    setting: Mapping[str, Any],
    *,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Answer this shard's rows not yet answered with ``setting``; returns what was done.

    ``answer(row)`` returns an ``InferenceResult``; a row whose video cannot be read (or any other
    :class:`TempoKitError`) is recorded with its ``error`` and answered again by a rerun.
    """
    from tqdm.auto import tqdm

    rows = list(rows)[shard[0] :: shard[1]]
    path = Path(output) / PREDICTIONS_FILE
    handle = open_journal(shard_path(path, shard))
    try:
        previous = [] if overwrite else read_setting_results(path)
        if overwrite:
            handle.truncate(0)
        _check_setting(path, previous, setting)
        done = {k for k, r in latest_by_id(previous).items() if not r.get("error")}
        todo = [row for row in rows if row.id not in done]
        errors = 0
        for row in tqdm(todo, desc="predict", unit="row", disable=not progress):
            try:
                record = row_record(row, answer(row), setting)
            except TempoKitError as error:
                record = {"id": row.id, "video": row.video, "query": row.query, "reference": row.reference,
                          "error": str(error), "setting": dict(setting)}  # fmt: skip
                errors += 1
            append_record(handle, record)
    finally:
        handle.close()
    return {"rows": len(rows), "answered": len(todo) - errors, "errors": errors, "resumed": len(rows) - len(todo)}


def summarize_predictions(output: str | Path, skipped: list[str]) -> dict[str, Any]:
    """Counts, exact-match rate over rows with a reference, mean tokens and timings (all ranks' files)."""
    latest = list(latest_by_id(read_setting_results(Path(output) / PREDICTIONS_FILE)).values())
    ok = [r for r in latest if not r.get("error")]
    scored = [r for r in ok if "exact_match" in r]
    phases = sorted({k for r in ok for k in r["timings"]})
    return {
        "rows": len(latest),
        "answered": len(ok),
        "errors": len(latest) - len(ok),
        "skipped_rows": skipped,
        "with_reference": len(scored),
        "exact_match": round(sum(r["exact_match"] for r in scored) / len(scored), 6) if scored else None,
        "mean_visual_tokens": round(statistics.fmean(r["tokens"]["visual_tokens"] for r in ok), 3) if ok else None,
        "mean_seconds": {p: round(statistics.fmean(r["timings"].get(p, 0.0) for r in ok), 4) for p in phases},
    }
