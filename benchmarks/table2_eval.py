"""Table 2's measurements on the spliced task: answers under each allocator, routing AUROC, intervals.

Everything reads the cached compressor output (:func:`table2_task.cache_pool`), so one video costs
one LLM call per setting. Accuracy is the exact colour sequence; a video's needle tokens are the
memory tokens its asked segment keeps.
"""

from __future__ import annotations

import math

import torch
from table2_task import PoolCache, SegmentPool, Video, compressed_of, video_segments
from torch import Tensor

from tempo_kit.allocators.base import Allocator
from tempo_kit.evaluation.routing import ranking_scores

#: Table 2B's allocators at a binding budget, in the paper's row order (its Uniform Subsampling is
#: ``subsample``; the kit's even split ``uniform`` beside it), then ATA.
ALLOCATORS: dict[str, dict] = {
    "subsample (paper's uniform)": {"name": "subsample"},
    "uniform (even split)": {"name": "uniform"},
    "random": {"name": "random"},
    "adversarial": {"name": "adversarial"},
    "top-k": {"name": "topk"},
    "ATA (released)": {"name": "ata", "mode": "released"},
    "ATA (exact)": {"name": "ata", "mode": "exact"},
}
#: 95 % two-sided normal quantile (Wilson intervals)
Z95 = 1.959963984540054


class NeedleTokens(Allocator):
    """``tokens`` for the segment whose relevance is highest (the needle, given one-hot labels as
    relevance), ``k_min`` for every other: accuracy as a function of the needle's tokens alone."""

    def __init__(self, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None) -> Tensor:
        counts = torch.full((len(relevance),), k_min, dtype=torch.long)
        counts[int(relevance.argmax())] = self.tokens
        return counts


@torch.no_grad()
def answers(
    model, pool: SegmentPool, cache: PoolCache, videos: list[Video], *, allocator, budget: int, k_min: int,
    relevance: list[Tensor] | None = None, max_new_tokens: int = 12, chunk: int = 50,
) -> dict[str, list[float]]:  # fmt: skip
    """Per video: 1.0 if the colours were answered exactly, and the needle segment's kept tokens."""
    from tempo_kit.model.inference_batch import inference_batch
    from tempo_kit.training.scoring import normalise_answer

    correct, needle = [], []
    for start in range(0, len(videos), chunk):
        part = videos[start : start + chunk]
        scores = None if relevance is None else relevance[start : start + chunk]
        batch = inference_batch(model.tokenizer, [video_segments(pool, v) for v in part], [v.question for v in part])
        out = model.generate(batch, budget=budget, k_min=k_min, allocator=allocator,
                             compressed=compressed_of(part, cache, scores), max_new_tokens=max_new_tokens)  # fmt: skip
        for video, text, allocation in zip(part, out.texts, out.allocations, strict=True):
            correct.append(float(normalise_answer(text) == normalise_answer(video.answer)))
            needle.append(float(allocation.counts[video.needle]))
    return {"correct": correct, "needle_tokens": needle}


def per_video_auroc(scores: list[Tensor], videos: list[Video]) -> float:
    """Mean over videos of the AUROC of one video's scores against its needle (ties count half), by
    the kit's routing metric (:func:`tempo_kit.evaluation.routing.ranking_scores`).

    Per video, because an allocator ranks the segments of one video only.
    """
    values = [ranking_scores(score, video.labels())["auroc"] for score, video in zip(scores, videos, strict=True)]
    return sum(values) / len(values)


def saturation(frames: Tensor) -> Tensor:
    """Pixel saliency: mean (max − min channel) per segment of ``frames`` ``[S, T, H, W, 3]``."""
    values = frames.float()
    return (values.amax(dim=-1) - values.amin(dim=-1)).flatten(1).mean(dim=1)


def routing_scores(pool: SegmentPool, cache: PoolCache, untrained: PoolCache, videos: list[Video]) -> dict[str, float]:
    """Per-video AUROC of the trained router, the untrained SVLM relevance and two question-blind scorers."""
    middle = (len(videos[0].segments) - 1) / 2
    scorers = {
        "trained router": [cache.relevance[v.shape, v.segments] for v in videos],
        "untrained relevance": [untrained.relevance[v.shape, v.segments] for v in videos],
        "pixel saliency": [saturation(pool.frames[v.segments]) for v in videos],
        "position only": [-(torch.arange(len(v.segments)) - middle).abs() for v in videos],
    }
    return {name: per_video_auroc(scores, videos) for name, scores in scorers.items()}


def noised(cache: PoolCache, videos: list[Video], level: float, generator: torch.Generator) -> list[Tensor]:
    """The trained relevance with Gaussian noise on its logits, ``level`` × their spread (``inf``: noise only)."""
    logits = [torch.logit(cache.relevance[v.shape, v.segments].double().clamp(1e-6, 1 - 1e-6)) for v in videos]
    spread = float(torch.cat(logits).std())
    out = []
    for logit in logits:
        noise = torch.randn(logit.shape, generator=generator, dtype=torch.float64)
        mixed = noise if math.isinf(level) else logit + level * spread * noise
        out.append(torch.sigmoid(mixed).float())
    return out


def wilson(successes: float, total: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = Z95 * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2)) / (1 + Z95**2 / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(per_seed: list[list[float]], proportion: bool = True) -> dict[str, float]:
    """Pooled mean over every seed's videos with (for 0/1 outcomes) its Wilson interval, and the
    spread of the seed means."""
    pooled = [x for seed in per_seed for x in seed]
    means = [sum(s) / len(s) for s in per_seed]
    low, high = wilson(sum(pooled), len(pooled)) if proportion else (math.nan, math.nan)
    return {"mean": sum(pooled) / len(pooled), "low": low, "high": high, "n": len(pooled),
            "seed_means": means, "seed_min": min(means), "seed_max": max(means)}  # fmt: skip
