"""Routing diagnostics: does the SVLM's relevance point at the segments that hold the answer?

For every annotation row with ``relevant_spans`` the compressor scores each segment of the video
(with the prompt it uses at inference); the rows' spans label the segments (rule in
:mod:`tempo_kit.data.spans`). The report gives, per video and overall:

* ``auroc`` and ``average_precision`` of the relevance against the labels (``None`` for a video
  whose segments are all of one class; ``overall`` pools every segment);
* per budget, under the model's allocator: ``relevant_kept_share``, the share of relevant segments
  that keep at least ``keep_tokens`` tokens; ``needle_recall``, the share of the relevant segments'
  ``k_max`` memory tokens that reach the LLM; and ``tokens_relevant`` / ``tokens_irrelevant``.

:func:`plot_roc` and :func:`plot_video` draw the ROC curve and a video's allocation over time with
its spans shaded. ``tempo-kit route`` (:mod:`tempo_kit.evaluation.route_command`) runs it all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.types import Allocation
from tempo_kit.video.reading import Sampling


@dataclass
class ScoredVideo:
    """One row's segments: relevance from the compressor, labels from its spans."""

    id: str
    query: str
    relevance: Tensor  # float32 [S]
    labels: Tensor  # float [S], 1 = overlaps a relevant span
    times: Tensor  # [S] segment time tags (s)
    spans: list[tuple[float, float]]
    segment_seconds: float | None = None


def ranking_scores(relevance: Tensor, labels: Tensor) -> dict[str, float | None]:
    """AUROC and average precision of ``relevance`` against 0/1 ``labels`` (``None`` if one class only).

    Scores of any range are ranked as given: torchmetrics reads values outside [0, 1] as logits and
    squashes them with a sigmoid, which ties every score above ~17 in float32 (a pixel statistic, a
    raw logit). Both metrics read only the order and the ties, so the scores go in as their dense
    ranks scaled to [0, 1].
    """
    from torchmetrics.functional.classification import binary_auroc, binary_average_precision

    targets = (labels > 0.5).long()
    if targets.numel() == 0 or targets.min() == targets.max():
        return {"auroc": None, "average_precision": None}
    _, ranks = torch.unique(relevance.double().flatten(), sorted=True, return_inverse=True)
    scores = (ranks.float() / max(1, int(ranks.max()))).reshape(relevance.shape)
    return {
        "auroc": float(binary_auroc(scores, targets)),
        "average_precision": float(binary_average_precision(scores, targets)),
    }


def allocation_stats(counts: Tensor, labels: Tensor, k_max: int, keep_tokens: int) -> dict[str, Any]:
    """Where one allocation's tokens went relative to the labels (see the module docstring)."""
    counts = counts.long().cpu()
    relevant = labels.cpu() > 0.5
    n_relevant = int(relevant.sum())
    kept = int((counts[relevant] >= keep_tokens).sum())
    return {
        "relevant_segments": n_relevant,
        "relevant_kept": kept,
        "relevant_kept_share": kept / n_relevant if n_relevant else None,
        "tokens_relevant": int(counts[relevant].sum()),
        "tokens_irrelevant": int(counts[~relevant].sum()),
        "needle_recall": int(counts[relevant].sum()) / (k_max * n_relevant) if n_relevant else None,
    }


def allocate(allocator: nn.Module, video: ScoredVideo, k_max: int, budget: int, k_min: int) -> Allocation:
    """The allocation ``allocator`` gives ``video`` under ``budget``."""
    counts = allocator(video.relevance, k_max, budget, k_min).long().cpu()
    return Allocation(counts, video.relevance, video.times, budget, k_min, k_max)


def _pooled(per_video: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sums of the per-video allocation stats, shares recomputed from the sums."""
    rows = list(per_video)
    total = {
        key: sum(r[key] for r in rows)
        for key in ("relevant_segments", "relevant_kept", "tokens_relevant", "tokens_irrelevant")
    }
    n = total["relevant_segments"]
    total["relevant_kept_share"] = total["relevant_kept"] / n if n else None
    recalls = [r["needle_recall"] for r in rows if r["needle_recall"] is not None]
    total["needle_recall"] = sum(recalls) / len(recalls) if recalls else None
    return total


def routing_report(
    videos: Sequence[ScoredVideo],
    allocator: nn.Module,
    budgets: Sequence[int],
    *,
    k_max: int,
    k_min: int,
    keep_tokens: int,
) -> dict[str, Any]:
    """The diagnostics of ``videos`` as a JSON-ready mapping: ``settings``, ``overall``, ``videos``.

    ``overall.needle_recall`` is the mean over videos of each video's recall.
    """
    per_video = []
    for video in videos:
        budgets_stats = {
            str(b): allocation_stats(
                allocate(allocator, video, k_max, b, k_min).counts, video.labels, k_max, keep_tokens
            )
            for b in budgets
        }
        per_video.append(
            {
                "id": video.id,
                "segments": len(video.labels),
                "relevant": int((video.labels > 0.5).sum()),
                **ranking_scores(video.relevance, video.labels),
                "budgets": budgets_stats,
            }
        )
    aurocs = [v["auroc"] for v in per_video if v["auroc"] is not None]
    pooled = ranking_scores(
        torch.cat([v.relevance for v in videos]) if videos else torch.zeros(0),
        torch.cat([v.labels for v in videos]) if videos else torch.zeros(0),
    )
    overall = {
        "videos": len(per_video),
        "segments": sum(v["segments"] for v in per_video),
        "relevant": sum(v["relevant"] for v in per_video),
        **pooled,
        "mean_video_auroc": sum(aurocs) / len(aurocs) if aurocs else None,
        "budgets": {str(b): _pooled(v["budgets"][str(b)] for v in per_video) for b in budgets},
    }
    settings = {
        "allocator": repr(allocator),
        "budgets": list(budgets),
        "k_max": k_max,
        "k_min": k_min,
        "keep_tokens": keep_tokens,
    }
    return {"settings": settings, "overall": overall, "videos": per_video}


def plot_roc(videos: Sequence[ScoredVideo], path: str | Path, dpi: int = 150) -> Path:
    """The ROC curve of the pooled segments (AUROC in the legend) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from torchmetrics.functional.classification import binary_roc

    scores = torch.cat([v.relevance.float() for v in videos])
    targets = (torch.cat([v.labels for v in videos]) > 0.5).long()
    auroc = ranking_scores(scores, targets.float())["auroc"]
    fig, axes = plt.subplots(figsize=(4.2, 4.2))
    if auroc is not None:
        fpr, tpr, _ = binary_roc(scores, targets)
        axes.plot(
            fpr.numpy(), tpr.numpy(), color="#1f5fa8", linewidth=1.8, label=f"relevance (AUROC {auroc:.3f})"
        )
    axes.plot([0, 1], [0, 1], color="#6b6b6b", linestyle="--", linewidth=1, label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(
        f"{len(videos)} videos, {len(scores)} segments ({int(targets.sum())} relevant)", fontsize=9
    )
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    axes.set_aspect("equal")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_video(video: ScoredVideo, allocation: Allocation, path: str | Path) -> Path:
    """A video's allocation over time (:func:`~tempo_kit.inference.plots.plot_allocation`), spans shaded."""
    from tempo_kit.inference.plots import plot_allocation

    return plot_allocation(
        allocation,
        path,
        query=f"{video.id}: {video.query}",
        segment_seconds=video.segment_seconds,
        highlight=video.spans or None,
        highlight_label="relevant span",
    )


@torch.no_grad()
def score_rows(
    compressor: nn.Module,
    records: Sequence[Any],
    media_root: str | Path | None,
    *,
    sampling: Sampling,
    skip_log: Any = None,
    keep_compressed: bool = False,
) -> list[ScoredVideo] | list[tuple[ScoredVideo, Any, Any]]:
    """Score every row with ``relevant_spans`` with ``compressor`` (in eval mode: the routing prompt).

    Rows without spans, or whose video cannot be used, are recorded in ``skip_log`` (a
    :class:`~tempo_kit.data.skips.SkipLog`) and left out. With ``keep_compressed`` each item is
    ``(ScoredVideo, Sample, CompressorOutput)``, so a caller can reuse the memory (e.g. to answer).
    ``sampling`` says how videos are read (:class:`~tempo_kit.video.reading.Sampling`).
    """
    from tempo_kit.data.dataset import TempoDataset
    from tempo_kit.data.skips import SkipLog
    from tempo_kit.errors import TempoKitError
    from tempo_kit.model.compression import compress_samples
    from tempo_kit.model.prompts import compressor_query

    skip_log = skip_log if skip_log is not None else SkipLog()
    dataset = TempoDataset(
        records,
        media_root,
        sampling=sampling,
        on_error="raise",
        skip_log=skip_log,
        require_answer=False,
    )
    compressor = compressor.eval()
    device = next(compressor.parameters()).device
    out = []
    for record in records:
        if record.relevant_spans is None or record.kind != "video":
            skip_log.add(record.where, record.media, "no relevant_spans: routing needs labelled segments")
            continue
        try:
            sample = dataset.load(record)
        except TempoKitError as error:
            skip_log.add(record.where, str(dataset.media_path(record)), f"{type(error).__name__}: {error}")
            continue
        query = compressor_query([t for t in sample.turns if t.role == "user"][-1:])
        compressed = compress_samples(compressor, [sample.segments.to(device)], [query])
        if compressed.relevance is None:
            from tempo_kit.errors import ConfigError

            raise ConfigError(
                f"the {type(compressor).__name__} compressor gives no relevance scores to diagnose"
            )
        segments = sample.segments
        video = ScoredVideo(
            id=record.id,
            query=query,
            relevance=compressed.relevance.float().cpu(),
            labels=sample.segment_labels,
            times=segments.times.cpu(),
            spans=list(record.relevant_spans),
            segment_seconds=float(segments.window / sampling.fps),
        )
        out.append((video, sample, compressed) if keep_compressed else video)
    return out
