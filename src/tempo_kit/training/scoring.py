"""How validation and test score a batch: the prompt cut before the reference answer, the
generated reply read as an option letter or compared as open text, and the torchmetrics
accumulators that weigh each batch by its samples and sync across devices.

:class:`~tempo_kit.training.module.TempoModule` runs these in its validation and test steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from tempo_kit.types import IGNORE_INDEX, TempoBatch


def prompt_only(batch: TempoBatch) -> TempoBatch:
    """The batch cut before each row's first supervised token: the prompt to generate an answer from.

    Validation rows carry their reference answer (for the loss); generation must not see it.
    """
    rows, masks = [], []
    for ids, labels, mask in zip(batch.input_ids, batch.labels, batch.attention_mask):
        supervised = (labels != IGNORE_INDEX).nonzero()
        end = int(supervised[0]) if len(supervised) else int(mask.sum())
        rows.append(ids[:end])
        masks.append(mask[:end])
    length = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), length, dtype=batch.input_ids.dtype, device=batch.input_ids.device)
    attention = torch.zeros_like(input_ids)
    for index, (row, mask) in enumerate(zip(rows, masks)):
        input_ids[index, : len(row)] = row
        attention[index, : len(mask)] = mask
    return replace(
        batch, input_ids=input_ids, attention_mask=attention, labels=torch.full_like(input_ids, IGNORE_INDEX)
    )


def normalise_answer(text: str) -> str:
    """Lower case, surrounding punctuation and spaces removed: ``" Yellow."`` → ``"yellow"``."""
    return text.strip().strip(".,;:!?\"'()[]").strip().lower()


def split_answers(
    texts: Sequence[str], answers: Sequence[str | None], num_options: int
) -> tuple[list[str | None], list[str], list[bool]]:
    """Generated replies → (letters read from the multiple-choice replies, their reference
    letters, exact-match hits of the open-ended replies).

    A reference that is one of the first ``num_options`` letters marks a multiple-choice row, its
    reply read by ``extract_choice`` and scored by the kit's one multiple-choice metric
    (:func:`~tempo_kit.evaluation.metrics.choice_accuracy_metric`); any other reference is an
    open-ended row, scored by normalised exact match. Rows without a reference are left out.
    """
    from tempo_kit.evaluation.answers import extract_choice, valid_letters

    letters = valid_letters(num_options)
    choices: list[str | None] = []
    references: list[str] = []
    open_hits: list[bool] = []
    for text, answer in zip(texts, answers):
        if answer is None:
            continue
        reference = str(answer).strip()
        if len(reference) == 1 and reference.upper() in letters:
            choices.append(extract_choice(text, num_options))
            references.append(reference.upper())
        else:
            open_hits.append(normalise_answer(text) == normalise_answer(reference))
    return choices, references, open_hits


def answer_hits(texts: Sequence[str], answers: Sequence[str | None], num_options: int) -> list[bool]:
    """One hit or miss per row with a reference: option letters and open answers alike."""
    choices, references, open_hits = split_answers(texts, answers, num_options)
    return [choice == reference for choice, reference in zip(choices, references)] + open_hits


def eval_metrics():
    """torchmetrics accumulators of validation/test: means weighted by samples, and sample counts.

    ``loss`` weighs each batch's mean loss by its number of samples; ``accuracy`` is the option
    letter on multiple-choice rows (the same metric ``tempo-kit eval`` reports),
    ``open_accuracy`` normalised exact match on open-ended rows.
    """
    from torch import nn
    from torchmetrics import MeanMetric, SumMetric

    from tempo_kit.evaluation.metrics import choice_accuracy_metric

    return nn.ModuleDict(
        {
            "loss": MeanMetric(),
            "loss_samples": SumMetric(),
            "accuracy": choice_accuracy_metric(sync_on_compute=True),
            "scored": SumMetric(),
            "open_accuracy": MeanMetric(),
            "open_scored": SumMetric(),
        }
    )


def computed_eval_metrics(metrics, stage: str) -> dict[str, float | int]:
    """``{stage}/loss``, ``/accuracy``, ``/scored``, ``/open_accuracy``, ``/open_scored``; then reset.

    Collective across devices (torchmetrics syncs in ``compute``): every rank calls it.
    """
    import warnings

    out: dict[str, float] = {}
    with warnings.catch_warnings():  # a count nobody updated (no open-ended rows) is simply 0
        warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method")
        counts = {name: float(metrics[name].compute()) for name in ("loss_samples", "scored", "open_scored")}
    for mean, count in (("loss", "loss_samples"), ("accuracy", "scored"), ("open_accuracy", "open_scored")):
        total = counts[count]
        if total > 0:
            out[f"{stage}/{mean}"] = float(metrics[mean].compute())
            if mean != "loss":
                out[f"{stage}/{count}"] = int(total)  # a count of rows, printed and logged as one
    for metric in metrics.values():
        metric.reset()
    return out
