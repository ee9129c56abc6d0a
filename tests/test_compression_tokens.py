"""Calls cut by token count: the greedy plan, its execution by compress_samples, and bad budgets."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tempo_kit.compressors import Compressor
from tempo_kit.compressors.base import padded_tokens
from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.model.compression import compress_samples, plan_calls
from tempo_kit.model.config import TempoConfig
from tempo_kit.recipes.ranges import check_values
from tempo_kit.types import CompressorOutput, Segments


def packed_tokens(counts):
    return sum(counts)


def numbered(samples: list[list[int]], source: str | None = None) -> list[Segments]:
    """One Segments per sample; segment times number all segments 0, 1, 2, … across samples."""
    out, start = [], 0
    for tokens in samples:
        times = torch.arange(start, start + len(tokens), dtype=torch.float64)
        out.append(Segments(torch.zeros(len(tokens), 1, 2, 2, 3, dtype=torch.uint8), times[:, None], times, source=source))
        start += len(tokens)
    return out


class TokenCompressor(Compressor):
    """Memory = the segment's time; segment i (by time) costs ``tokens[i]``; records every call."""

    hidden_size, k_max = 1, 1

    def __init__(self, tokens: list[int], size: int, budget, packed: bool = False) -> None:
        super().__init__()
        self.tokens = tokens
        self.segment_batch_size, self.call_token_budget, self.packed = size, budget, packed
        self.calls: list[list[int]] = []  # per call, the token count of each segment it held

    def segment_tokens(self, segments, query, system_prompt=None):
        return [self.tokens[int(t)] for t in segments.times]

    def call_tokens(self, counts):
        return packed_tokens(counts) if self.packed else padded_tokens(counts)

    def forward(self, samples, queries, system_prompt=None):
        self.calls.append([count for s in samples for count in self.segment_tokens(s, "")])
        times = torch.cat([s.times for s in samples]).float()
        return CompressorOutput(times[:, None, None], torch.full_like(times, 0.5), [len(s) for s in samples])


def check_plan(plan: list[int], counts: list[int], size: int, budget: int | None, cost) -> None:
    """Every segment once, in order; each call within both limits and as long as it could be."""
    assert sum(plan) == len(counts) and all(n >= 1 for n in plan)
    start = 0
    for k, n in enumerate(plan):
        call = counts[start : start + n]
        assert n <= size
        if budget is not None:
            assert cost(call) <= budget
        if k < len(plan) - 1:  # maximal: the next segment did not fit
            grown = call + [counts[start + n]]
            assert n == size or (budget is not None and cost(grown) > budget)
        start += n


counts_strategy = st.lists(st.integers(1, 300), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(counts=counts_strategy, size=st.integers(1, 9), slack=st.integers(0, 900), packed=st.booleans())
def test_plan_is_greedy_within_both_limits(counts, size, slack, packed):
    cost = packed_tokens if packed else padded_tokens
    budget = max(counts, default=1) + slack
    plan = plan_calls(counts, size, budget, cost)
    check_plan(plan, counts, size, budget, cost)


@given(counts=counts_strategy, size=st.integers(1, 9))
def test_without_a_budget_calls_are_cut_by_count_alone(counts, size):
    plan = plan_calls(counts, size)
    assert plan == [size] * (len(counts) // size) + ([len(counts) % size] if len(counts) % size else [])


def test_padded_cost_is_count_times_longest_by_hand():
    # 100, 100, 300: two calls of 100 cost 200; adding 300 makes 3 × 300 = 900 > 600
    assert plan_calls([100, 100, 300, 300, 50], 8, 600) == [2, 2, 1]
    # packed (summed): 100 + 100 + 300 = 500 ≤ 600; + 300 = 800 > 600
    assert plan_calls([100, 100, 300, 300, 50], 8, 600, packed_tokens) == [3, 2]


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.lists(st.integers(1, 200), min_size=1, max_size=12), min_size=1, max_size=4),
    size=st.integers(1, 6),
    slack=st.integers(0, 600),
    packed=st.booleans(),
)
def test_compress_samples_runs_the_plan_in_order(samples, size, slack, packed):
    flat = [t for tokens in samples for t in tokens]
    budget = max(flat) + slack
    compressor = TokenCompressor(flat, size, budget, packed)
    reported: list[int] = []
    out = compress_samples(compressor, numbered(samples), ["q"] * len(samples), on_chunk=reported.append)
    assert out.memory[:, 0, 0].tolist() == list(range(len(flat)))  # every segment once, in order
    assert out.num_segments == [len(s) for s in samples]
    assert [t for call in compressor.calls for t in call] == flat
    assert reported == [len(call) for call in compressor.calls]
    check_plan([len(call) for call in compressor.calls], flat, size, budget, compressor.call_tokens)


def test_a_segment_over_the_budget_is_refused_before_any_call():
    compressor = TokenCompressor([100, 120, 90, 300, 80], size=4, budget=250)
    with pytest.raises(ConfigError) as error:
        compress_samples(compressor, numbered([[100, 120], [90, 300, 80]], "clip.mp4"), ["q", "q"])
    message = str(error.value)
    assert "segment 1 of clip.mp4 needs 300 tokens" in message and "call_token_budget=250" in message
    assert "raise model.compressor.call_token_budget to at least 300" in message and "\n" not in message
    assert compressor.calls == []


@pytest.mark.parametrize("budget", [0, -5, True, 2.5, "4096"])
def test_a_bad_budget_on_the_compressor_is_refused(budget):
    compressor = TokenCompressor([1, 2], size=4, budget=budget)
    with pytest.raises(ConfigError, match=r"TokenCompressor: call_token_budget=.* must be a positive integer"):
        compress_samples(compressor, numbered([[1, 2]]), ["q"])
    assert compressor.calls == []


class Uncounted(Compressor):
    hidden_size, k_max, call_token_budget = 1, 1, 100

    def forward(self, samples, queries, system_prompt=None):  # never reached
        raise AssertionError


class PlainModule(nn.Module):
    """A plugin compressor that is no Compressor subclass and cannot count its tokens."""

    hidden_size, k_max, segment_batch_size, call_token_budget = 1, 1, 4, 100

    def forward(self, samples, queries, system_prompt=None):  # never reached
        raise AssertionError


@pytest.mark.parametrize("compressor", [Uncounted(), PlainModule()], ids=["subclass", "plain-module"])
def test_a_budget_for_a_compressor_that_cannot_count_is_refused(compressor):
    with pytest.raises(ConfigError, match=rf"{type(compressor).__name__} cannot count its tokens.*set call_token_budget to null"):
        compress_samples(compressor, numbered([[1]]), ["q"])


def test_a_count_per_segment_is_the_contract():
    compressor = TokenCompressor([10], size=4, budget=100)
    compressor.segment_tokens = lambda segments, query: [10]  # one count for two segments
    with pytest.raises(TempoKitError, match=r"segment_tokens gave \[10\] for 2 segments"):
        compress_samples(compressor, numbered([[10, 20]]), ["q"])


@pytest.mark.parametrize("budget", [0, -1, 1.5, "big", True])
def test_the_config_key_is_checked_before_building(budget):
    spec = {"name": "qwen3_vl", "pretrained": "unused", "call_token_budget": budget}
    with pytest.raises(ConfigError, match=r"^model config: compressor.call_token_budget=.* positive integer"):
        TempoConfig.from_mapping({"compressor": spec, "decoder": {"name": "hf_causal_lm"}})
    with pytest.raises(ConfigError, match=r"recipe 'r.yaml': model.compressor.call_token_budget="):
        check_values({"model": {"compressor": spec}}, "r.yaml")


def test_null_and_positive_budgets_are_accepted_by_the_config():
    for budget in (None, 1, 8192):
        spec = {"name": "qwen3_vl", "pretrained": "unused", "call_token_budget": budget}
        config = TempoConfig.from_mapping({"compressor": spec, "decoder": {"name": "hf_causal_lm"}})
        assert config.to_dict()["compressor"]["call_token_budget"] == budget
        check_values({"model": {"compressor": spec}}, "r.yaml")
