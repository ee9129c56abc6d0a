"""Intra-segment reductions (Table 2C): head, tail, merge, random, and reduce_tokens."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.allocators import reduce_tokens
from tempo_kit.allocators.reductions import head, merge, random, tail
from tempo_kit.errors import ConfigError
from tempo_kit.registry import REDUCTIONS


@pytest.fixture
def memory():
    return torch.randn(12, 5, generator=torch.Generator().manual_seed(0))


def test_registered():
    assert {"head", "tail", "merge", "random"} <= set(REDUCTIONS.list())


def test_head_equals_slicing_and_tail_keeps_the_end(memory):
    for k in (0, 1, 7, 12, 20):
        assert torch.equal(head(memory, k), memory[:k])
    assert torch.equal(tail(memory, 3), memory[9:])
    assert tail(memory, 0).shape == (0, 5)
    assert torch.equal(tail(memory, 20), memory)


def test_random_keeps_order_and_is_seeded():
    memory = torch.arange(20.0).unsqueeze(1)  # row i holds i, so order is visible
    kept = random(memory, 6, seed=5)[:, 0]
    assert kept.shape == (6,) and bool((kept[1:] > kept[:-1]).all())
    assert torch.equal(random(memory, 6, seed=5), random(memory, 6, seed=5))
    assert len({tuple(random(memory, 6, seed=s)[:, 0].tolist()) for s in range(5)}) > 1
    assert random(memory, 25) is memory


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(0, 45), st.integers(1, 6))
def test_merge_returns_exactly_k_tokens(n, k, d):
    memory = torch.randn(n, d, generator=torch.Generator().manual_seed(n * 100 + k))
    out = merge(memory, k)
    if k >= n:
        assert out is memory
    else:
        assert out.shape == (k, d) and out.dtype == memory.dtype


def test_merge_averages_the_most_similar_pair_in_place():
    # A = rows 0, 2; B = rows 1, 3. Row 2 is nearly parallel to row 3, so one merge joins them
    # into their mean at row 3's place; rows 0 and 1 stay, order kept.
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.1, 1.0]])
    out = merge(memory, 3)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.05, 1.0]]))


def test_merge_is_size_weighted_mean_of_everything():
    memory = torch.randn(9, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(merge(memory, 1)[0], memory.mean(0))  # k = 1 keeps the mean


def test_merge_keeps_identical_runs_lossless():
    # four distinct tokens, each repeated: merging to 4 must recover them in time order
    base = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, -1.0]])
    memory = base.repeat_interleave(4, dim=0)
    torch.testing.assert_close(merge(memory, 4), base)


def test_reduce_tokens_applies_counts(memory):
    stack = torch.stack([memory, memory * 2, memory * 3])
    out = reduce_tokens(stack, torch.tensor([0, 4, 12]))
    assert [t.shape for t in out] == [(0, 5), (4, 5), (12, 5)]
    assert torch.equal(out[1], stack[1, :4])
    out = reduce_tokens(stack, torch.tensor([2, 2, 2]), method="tail")
    assert torch.equal(out[2], stack[2, -2:])
    assert reduce_tokens(stack, [1, 3, 5], method="merge")[2].shape == (5, 5)
    seeded = reduce_tokens(stack, [3, 3, 3], method="random", seed=4)
    assert torch.equal(seeded[0], random(memory, 3, seed=4))


def test_errors_name_the_problem(memory):
    with pytest.raises(ConfigError, match="k=-1 must be ≥ 0"):
        head(memory, -1)
    with pytest.raises(ConfigError, match=r"memory must be a \[n, d\] tensor"):
        merge(memory[None], 2)
    with pytest.raises(KeyError, match=r"unknown reduction 'merg' \(did you mean 'merge'\?\)"):
        reduce_tokens(memory[None], [1], method="merg")
    with pytest.raises(KeyError, match="unknown argument.*'seed'"):
        reduce_tokens(memory[None], [1], method="head", seed=1)
    with pytest.raises(ConfigError, match=r"counts must lie in \[0, k_max=12\]"):
        reduce_tokens(memory[None], [13])
    with pytest.raises(ConfigError, match=r"counts must be an integer tensor \[S\] = \[1\]"):
        reduce_tokens(memory[None], [1, 2])
