"""A weighted mixture of datasets, as the paper's stages mix image, video and text data.

The mixture has ``num_samples`` items (default: the sum of the parts). Part ``k`` contributes
``round(num_samples × w_k / Σw)`` of them (largest remainders settle the rounding), drawn from a
seeded permutation of that part and cycled when a part is smaller than its share (up-sampling);
a part with a smaller share is sub-sampled. The mapping is fixed by ``seed``; shuffling across
epochs is the sampler's job (Lightning's distributed sampler in multi-GPU runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset


def mixture_counts(weights: Sequence[float], num_samples: int) -> list[int]:
    """Items per part: proportional to ``weights``, summing exactly to ``num_samples``."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"mixture weights must be non-negative with a positive sum, got {weights.tolist()}")
    exact = weights / weights.sum() * num_samples
    counts = np.floor(exact).astype(np.int64)
    remainder = num_samples - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts.tolist()


class MixtureDataset(Dataset):
    """Items of several datasets in proportion to ``weights``; ``parts[k][i]`` underneath."""

    def __init__(
        self,
        datasets: Sequence[Dataset],
        weights: Sequence[float] | None = None,
        num_samples: int | None = None,
        seed: int = 0,
    ):
        if not datasets:
            raise ValueError("a mixture needs at least one dataset")
        sizes = [len(d) for d in datasets]
        weights = list(weights) if weights is not None else [float(s) for s in sizes]
        if len(weights) != len(datasets):
            raise ValueError(f"{len(weights)} weights for {len(datasets)} datasets")
        for size, weight in zip(sizes, weights):
            if size == 0 and weight > 0:
                raise ValueError("a dataset with a positive mixture weight is empty")
        num_samples = sum(sizes) if num_samples is None else num_samples
        self.datasets = list(datasets)
        self.counts = mixture_counts(weights, num_samples)
        rng = np.random.default_rng(seed)
        index: list[tuple[int, int]] = []
        for part, (size, count) in enumerate(zip(sizes, self.counts)):
            if count == 0:
                continue
            cycles = -(-count // size)
            order = np.concatenate([rng.permutation(size) for _ in range(cycles)])[:count]
            index.extend((part, int(i)) for i in order)
        self.index = [index[i] for i in rng.permutation(len(index))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        part, item = self.index[i]
        return self.datasets[part][item]
