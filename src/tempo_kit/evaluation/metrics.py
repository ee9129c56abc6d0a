"""Multiple-choice accuracy overall, per category and per duration bucket (torchmetrics).

Benchmarks report two different "overall" numbers, and scores fail to reproduce when they are
mixed up: the **per-sample mean** (every question weighs the same; Video-MME, LongVideoBench,
LVBench) and the **per-category mean** (every task weighs the same; MLVU's M-Avg). Both are
computed here, from the same records. An unparsed reply counts as wrong, in every number.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torchmetrics.classification import MulticlassAccuracy

from tempo_kit.evaluation.answers import OPTION_LETTERS

#: Class index of "no letter could be read": never equal to a target, so it scores as wrong.
UNPARSED_CLASS = len(OPTION_LETTERS)

#: Default duration buckets in seconds, (upper edge, name): LongVideoBench's duration groups
#: (≤15 s, ≤60 s, ≤10 min, ≤1 h) with an open bucket above an hour for LVBench.
DEFAULT_DURATION_BUCKETS: tuple[tuple[float, str], ...] = (
    (15.0, "0-15s"),
    (60.0, "15-60s"),
    (600.0, "1-10min"),
    (3600.0, "10-60min"),
    (float("inf"), ">60min"),
)


def duration_bucket(
    duration: float | str | None,
    buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS,
) -> str | None:
    """The bucket name of a duration: a number of seconds is bucketed by ``buckets``; a label the
    benchmark already gives (Video-MME's ``"short"``/``"medium"``/``"long"``) is kept as is."""
    if duration is None or duration == "":
        return None
    if isinstance(duration, str):
        try:
            duration = float(duration)
        except ValueError:
            return duration
    for upper, name in buckets:
        if float(duration) <= upper:
            return name
    return buckets[-1][1]


def _letter_class(letter: str | None) -> int:
    if letter is None:
        return UNPARSED_CLASS
    return OPTION_LETTERS.index(letter.upper())


def choice_classes(predictions: Sequence[str | None], answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted, target)`` class indices of option letters for :func:`choice_accuracy_metric`;
    an unread prediction (``None``) gets :data:`UNPARSED_CLASS`, which never matches a target."""
    return (
        torch.tensor([_letter_class(p) for p in predictions], dtype=torch.long),
        torch.tensor([_letter_class(a) for a in answers], dtype=torch.long),
    )


def choice_accuracy_metric(sync_on_compute: bool = False) -> MulticlassAccuracy:
    """The kit's one multiple-choice accuracy: the fraction of exact option-letter matches.

    Used by ``tempo-kit eval`` (:class:`ChoiceAccuracy`) and by training validation. Micro
    average over samples, in float64 so the score equals a recount (correct / total) exactly.
    ``sync_on_compute`` gathers the ranks' counts in ``compute`` (training validation under DDP);
    the eval harness leaves it off, as each rank scores its own records and rank 0 merges files.
    """
    metric = MulticlassAccuracy(
        num_classes=UNPARSED_CLASS + 1, average="micro", validate_args=False, sync_on_compute=sync_on_compute
    )
    return metric.set_dtype(torch.float64)


@dataclass
class GroupScore:
    accuracy: float
    count: int


class ChoiceAccuracy:
    """Streams (prediction, answer, category, duration) and computes every accuracy view.

    Args:
        duration_buckets: ``(upper edge in seconds, name)`` pairs for numeric durations.
    """

    def __init__(self, duration_buckets: Sequence[tuple[float, str]] = DEFAULT_DURATION_BUCKETS) -> None:
        self.duration_buckets = tuple(duration_buckets)
        self.overall = choice_accuracy_metric()
        self.per_category: dict[str, MulticlassAccuracy] = {}
        self.per_duration: dict[str, MulticlassAccuracy] = {}
        self.count = 0
        self.unparsed = 0

    def update(
        self,
        prediction: str | None,
        answer: str,
        category: str | None = None,
        duration: float | str | None = None,
    ) -> None:
        pred, target = choice_classes([prediction], [answer])
        self.overall.update(pred, target)
        self.count += 1
        self.unparsed += prediction is None
        if category not in (None, ""):
            self.per_category.setdefault(str(category), choice_accuracy_metric()).update(pred, target)
        bucket = duration_bucket(duration, self.duration_buckets)
        if bucket is not None:
            self.per_duration.setdefault(bucket, choice_accuracy_metric()).update(pred, target)

    @staticmethod
    def _scores(metrics: Mapping[str, MulticlassAccuracy]) -> dict[str, GroupScore]:
        return {
            name: GroupScore(float(metric.compute()), int(metric.tp.sum() + metric.fn.sum()))
            for name, metric in sorted(metrics.items())
        }

    def compute(self) -> dict:
        """``{"accuracy", "category_mean", "count", "unparsed", "per_category", "per_duration"}``.

        ``accuracy`` is the per-sample mean, ``category_mean`` the mean of the per-category
        accuracies (``None`` without categories); accuracies are fractions in [0, 1].
        """
        per_category = self._scores(self.per_category)
        per_duration = self._scores(self.per_duration)
        return {
            "accuracy": float(self.overall.compute()) if self.count else None,
            "category_mean": (
                sum(s.accuracy for s in per_category.values()) / len(per_category) if per_category else None
            ),
            "count": self.count,
            "unparsed": self.unparsed,
            "per_category": {k: vars(v) for k, v in per_category.items()},
            "per_duration": {k: vars(v) for k, v in per_duration.items()},
        }


def token_statistics(records: Iterable[Mapping]) -> dict:
    """Mean/min/max of the per-sample token records (the paper's "actual avg. toks/frame" rows).

    ``tokens_per_frame`` here is the mean over samples of (visual tokens / sampled frames).
    """
    keys = ("visual_tokens", "num_frames", "tokens_per_frame", "kept_segments", "num_segments")
    values: dict[str, list[float]] = {k: [] for k in keys}
    for record in records:
        tokens = record.get("tokens") or {}
        for key in keys:
            if tokens.get(key) is not None:
                values[key].append(float(tokens[key]))
    return {key: {"mean": sum(v) / len(v), "min": min(v), "max": max(v)} for key, v in values.items() if v}


def _accuracy(records: Sequence[Mapping]) -> dict:
    correct = sum(r.get("prediction") == r["answer"] for r in records)
    return {"accuracy": correct / len(records) if records else None, "count": len(records)}


def _fields(record: Mapping) -> Mapping:
    return record.get("fields") or {}


def _groups(records: Iterable[Mapping], keys_of) -> dict[str, dict]:
    groups: dict[str, list[Mapping]] = {}
    for record in records:
        for key in keys_of(record):
            if key not in (None, ""):
                groups.setdefault(str(key), []).append(record)
    return {key: _accuracy(group) for key, group in sorted(groups.items())}


def mlvu_scores(records: Sequence[Mapping]) -> dict:
    """MLVU dev's M-Avg as lmms-eval computes it: the mean of the seven task accuracies, always
    divided by 7 (a task with no question counts 0), with a warning naming the missing tasks."""
    from tempo_kit.evaluation.benchmarks import MLVU_DEV_TASKS

    per_task = {task: _accuracy([r for r in records if r.get("category") == task]) for task in MLVU_DEV_TASKS}
    missing = [task for task, score in per_task.items() if not score["count"]]
    if missing:
        warnings.warn(
            f"MLVU M-Avg divides by all {len(MLVU_DEV_TASKS)} tasks, and these have no question here "
            f"(counted 0): {', '.join(missing)}",
            stacklevel=2,
        )
    m_avg = sum(score["accuracy"] or 0.0 for score in per_task.values()) / len(MLVU_DEV_TASKS)
    return {"m_avg": m_avg, "per_task": per_task, "missing_tasks": missing}


def lvbench_scores(records: Sequence[Mapping]) -> dict:
    """LVBench: overall, and per question type with a question counted under *every* one of its
    types (the official per-type table), not only the first."""
    def types(record):
        return _fields(record).get("question_types") or [record.get("category")]

    return {"overall": _accuracy(records), "per_type": _groups(records, types)}


def videomme_scores(records: Sequence[Mapping]) -> dict:
    """Video-MME: overall and per duration (short / medium / long) of the same run."""
    return {"overall": _accuracy(records), "per_duration": _groups(records, lambda r: [r.get("duration")])}


def longvideobench_scores(records: Sequence[Mapping]) -> dict:
    """LongVideoBench: overall, per duration group (15, 60, 600, 3600 s) and per question category.

    An unparsable reply counts as wrong here; lmms-eval replaces it by a random letter, which is
    worth 1/(number of options) on average: ``overall_if_unparsed_guessed`` adds that expectation,
    so the two conventions can be compared.
    """
    def group(record):
        value = _fields(record).get("duration_group")
        return [None if value is None else str(int(value)) if float(value).is_integer() else str(value)]

    unparsed = [r for r in records if r.get("prediction") is None]
    correct = sum(r.get("prediction") == r["answer"] for r in records)
    guessed = correct + sum(1 / len(r["options"]) for r in unparsed if r.get("options"))
    return {
        "overall": _accuracy(records),
        "per_duration_group": _groups(records, group),
        "per_category": _groups(records, lambda r: [r.get("category")]),
        "unparsed": len(unparsed),
        "overall_if_unparsed_guessed": guessed / len(records) if records else None,
    }


#: ``--format`` → the benchmark's own numbers.
BENCHMARK_SCORES = {
    "mlvu": mlvu_scores,
    "lvbench": lvbench_scores,
    "videomme": videomme_scores,
    "longvideobench": longvideobench_scores,
}


def benchmark_scores(fmt: str, records: Sequence[Mapping]) -> dict:
    """The numbers a benchmark reports, as it defines them (``{}`` for the kit's own format)."""
    scorer = BENCHMARK_SCORES.get(fmt)
    return {} if scorer is None else scorer(list(records))
