"""Table 2B / 2E allocation baselines: which segments they keep, determinism, budget bounds."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.allocators import (
    AdversarialAllocator,
    PruneAllocator,
    RandomDropAllocator,
    SubsampleAllocator,
    TopKAllocator,
    UniformAllocator,
)
from tempo_kit.errors import ConfigError
from tempo_kit.registry import ALLOCATORS

SCORES = torch.tensor([0.3, 0.9, 0.1, 0.7, 0.5, 0.2])  # ranking: 1, 3, 4, 0, 5, 2


def test_uniform_gives_equal_counts_and_ignores_scores():
    assert UniformAllocator()(SCORES, 128, 500, 4).tolist() == [83] * 6  # 500 // 6
    assert UniformAllocator()(None, 128, 10_000, 4, num_segments=6).tolist() == [128] * 6
    assert UniformAllocator()(None, 128, 5, 4, num_segments=6).tolist() == [0] * 6


def test_subsample_keeps_evenly_spaced_segments_at_k_max():
    # the paper's Uniform Subsampling: B // k_max = 48 // 16 = 3 of 6 segments, every other one
    assert SubsampleAllocator()(SCORES, 16, 48, 4).tolist() == [16, 0, 16, 0, 16, 0]
    # scores play no role; 6 kept of 10 at ⌊i·10/6⌋ = 0, 1, 3, 5, 6, 8; the remainder 100 − 96 unspent
    assert SubsampleAllocator()(None, 16, 100, 4, num_segments=10).tolist() == [16, 16, 0, 16, 0, 16, 16, 0, 16, 0]
    # 32 segments, B = 160, k_max = 16 → 10 kept at ⌊3.2·i⌋
    kept = SubsampleAllocator()(None, 16, 160, 4, num_segments=32).nonzero().flatten().tolist()
    assert kept == [0, 3, 6, 9, 12, 16, 19, 22, 25, 28]
    # budget for all: everything at k_max; budget below k_max: the first segment keeps B
    assert SubsampleAllocator()(SCORES, 16, 1000, 4).tolist() == [16] * 6
    assert SubsampleAllocator()(SCORES, 16, 5, 4).tolist() == [5, 0, 0, 0, 0, 0]
    assert SubsampleAllocator()(SCORES, 16, 0, 4).tolist() == [0] * 6
    assert ALLOCATORS.build("subsample")(None, 128, 256, num_segments=6).tolist() == [128, 0, 0, 128, 0, 0]


def test_topk_keeps_the_highest_half_at_k_max():
    # ⌈0.5·6⌉ = 3 kept: idx 1, 3, 4 get k_max while 3·16 = 48 ≤ B = 48
    assert TopKAllocator()(SCORES, 16, 48, 4).tolist() == [0, 16, 0, 16, 16, 0]
    # B = 40: filled in score order while the budget allows → 16, 16, then 8 for idx 4
    assert TopKAllocator()(SCORES, 16, 40, 4).tolist() == [0, 16, 0, 16, 8, 0]


def test_topk_anchor_keeps_dropped_segments_on_the_timeline():
    # every segment first gets k_min = 4 (24 tokens); 48 − 24 = 24 extra → idx 1 to 16, idx 3 to 4 + 12
    k = TopKAllocator(anchor_dropped=True)(SCORES, 16, 48, 4).tolist()
    assert k == [4, 16, 4, 16, 4, 4] and sum(k) == 48
    k = TopKAllocator(anchor_dropped=True)(SCORES, 16, 44, 4).tolist()
    assert k == [4, 16, 4, 12, 4, 4]


def test_adversarial_keeps_the_lowest_half():
    # lowest three: idx 2 (0.1), 5 (0.2), 0 (0.3)
    assert AdversarialAllocator()(SCORES, 16, 48, 4).tolist() == [16, 0, 16, 0, 0, 16]


def test_routing_needs_scores():
    with pytest.raises(ConfigError, match="use allocator 'uniform' or 'random'"):
        TopKAllocator()(None, 16, 48, 4, num_segments=6)
    with pytest.raises(ConfigError, match=r"keep_ratio=0 must lie in \(0, 1\]"):
        TopKAllocator(keep_ratio=0)


def test_random_drop_is_seeded_and_halves():
    first = RandomDropAllocator(seed=3)(None, 16, 1000, 0, num_segments=10)
    again = RandomDropAllocator(seed=3)(SCORES.repeat(2)[:10], 16, 1000, 0)
    assert torch.equal(first, again)  # same seed, same segments; scores play no role
    assert int((first > 0).sum()) == 5 and set(first.tolist()) == {0, 16}
    others = [RandomDropAllocator(seed=s)(None, 16, 1000, 0, num_segments=10) for s in range(6)]
    assert len({tuple(o.tolist()) for o in others}) > 1
    # kept segments share the budget: 5 kept, 40 // 5 = 8 each
    assert sorted(RandomDropAllocator(seed=3)(None, 16, 40, 0, num_segments=10).tolist()) == [0] * 5 + [8] * 5
    # 0.7·10 is 7 despite float noise: 3 dropped
    assert int((RandomDropAllocator(drop_ratio=0.3)(None, 4, 100, 0, num_segments=10) > 0).sum()) == 7


def test_prune_can_drop_segments_and_ignores_k_min():
    # ATA with k_min = 0 (the call's 4 is ignored), released (no ε, float32):
    # ŝ = (s − 0.1)/0.8 = [1/4, 1, 0, 3/4, 1/2, 1/8] (float32 rounds 1/4, 1/2, 1/8 a hair up), so
    # Eq. 3 gives ⌊16·ŝ⌋ = [4, 16, 0, 12, 8, 2], Σ = 42 > 40 → Eq. 4 with weights ŝ/Σŝ (Σŝ = 2.625):
    # 40·w = [3.81, 15.24, 0, 11.43, 7.62, 1.90] → floors [3, 15, 0, 11, 7, 1], Σ = 37,
    # remainder 3 → the three highest weights (idx 1, 3, 4) get one more; segment 2 keeps nothing.
    assert PruneAllocator()(SCORES, 16, 40, 4).tolist() == [3, 16, 0, 12, 8, 1]
    # B = 30 → Eq. 4: 30·w = [2.86, 11.43, 0, 8.57, 5.71, 1.43] → floors Σ = 27,
    # remainder 3 → the three highest (idx 1, 3, 4) get one more.
    assert PruneAllocator()(SCORES, 16, 30, 4).tolist() == [2, 12, 0, 9, 6, 1]
    assert ALLOCATORS.build({"name": "prune", "mode": "exact"})(SCORES, 16, 40, 4).min() == 0


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=40),
    st.integers(1, 64),
    st.integers(0, 3000),
    st.integers(0, 8),
    st.sampled_from(["uniform", "subsample", "topk", "adversarial", "random", "prune"]),
    st.booleans(),
)
def test_baselines_respect_budget_and_bounds(scores, k_max, budget, k_min, name, anchor):
    kwargs = {"anchor_dropped": anchor} if name in ("topk", "adversarial") else {}
    alloc = ALLOCATORS.build({"name": name, **kwargs})
    k = alloc(torch.tensor(scores), k_max, budget, min(k_min, k_max))
    assert k.dtype == torch.long and k.shape == (len(scores),)
    assert int(k.sum()) <= budget
    assert int(k.min()) >= 0 and int(k.max()) <= k_max
