"""MixtureDataset: exact proportional counts, deterministic from the seed, up/down-sampling."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.data import MixtureDataset, mixture_counts


@given(
    weights=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=6).filter(
        lambda w: sum(w) > 0
    ),
    total=st.integers(0, 5000),
)
def test_counts_are_proportional_and_exact(weights, total):
    counts = mixture_counts(weights, total)
    assert sum(counts) == total and all(c >= 0 for c in counts)
    for count, weight in zip(counts, weights):
        assert abs(count - total * weight / sum(weights)) < 1.0 + 1e-9


def test_mixture_draws_by_weight():
    videos, images, texts = [f"v{i}" for i in range(10)], [f"i{i}" for i in range(100)], ["t0", "t1"]
    mix = MixtureDataset([videos, images, texts], weights=[2, 1, 1], num_samples=40, seed=3)
    kinds = Counter(item[0] for item in (mix[i] for i in range(len(mix))))
    assert kinds == {"v": 20, "i": 10, "t": 10}
    drawn_videos = [mix[i] for i in range(len(mix)) if mix[i][0] == "v"]
    assert sorted(drawn_videos) == sorted(videos * 2)  # up-sampled: every video twice
    assert [mix[i] for i in range(len(mix))] == [
        MixtureDataset([videos, images, texts], [2, 1, 1], 40, seed=3)[i] for i in range(40)
    ]
    assert [mix[i] for i in range(40)] != [
        MixtureDataset([videos, images, texts], [2, 1, 1], 40, seed=4)[i] for i in range(40)
    ]


def test_default_weights_are_sizes():
    mix = MixtureDataset([["a"] * 3, ["b"] * 5])
    assert len(mix) == 8 and mix.counts == [3, 5]


def test_errors():
    with pytest.raises(ValueError, match="weights"):
        MixtureDataset([[1], [2]], weights=[1])
    with pytest.raises(ValueError, match="empty"):
        MixtureDataset([[], [1]], weights=[1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        mixture_counts([-1, 2], 10)
