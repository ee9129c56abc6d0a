"""Routing diagnostics: ranking scores and allocation stats by hand, and ``tempo-kit route``'s bad input."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.allocators.baselines import UniformAllocator
from tempo_kit.cli import main
from tempo_kit.evaluation.routing import ScoredVideo, allocation_stats, ranking_scores, routing_report


def test_auroc_and_average_precision_by_hand():
    # positives score 0.9 and 0.4, negatives 0.6 and 0.2: 3 of 4 pairs ordered → AUROC 0.75;
    # ranked 0.9(+) 0.6(−) 0.4(+) 0.2(−): precision 1 at the 1st hit, 2/3 at the 2nd → AP 0.8333
    scores = ranking_scores(torch.tensor([0.9, 0.2, 0.6, 0.4]), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert scores["auroc"] == pytest.approx(0.75)
    assert scores["average_precision"] == pytest.approx(5 / 6, abs=1e-6)
    assert ranking_scores(torch.tensor([0.3, 0.4]), torch.zeros(2)) == {"auroc": None, "average_precision": None}


def test_scores_of_any_range_rank_as_given():
    # a pixel statistic or a raw logit: torchmetrics would squash 38 and 134 to the same sigmoid 1.0
    same_order = ranking_scores(torch.tensor([134.0, 38.0, 90.0, 55.0]), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert same_order == ranking_scores(torch.tensor([0.9, 0.2, 0.6, 0.4]), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert ranking_scores(torch.tensor([-40.0, -3.0, 50.0]), torch.tensor([0.0, 0.0, 1.0]))["auroc"] == 1.0
    # ties stay ties: half a pair each
    assert ranking_scores(torch.tensor([70.0, 70.0, 20.0]), torch.tensor([1.0, 0.0, 0.0]))["auroc"] == 0.75


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=2, max_size=12), st.data())
def test_auroc_is_the_share_of_ordered_pairs(values, data):
    labels = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    if all(labels) or not any(labels):
        return
    scores = torch.tensor(values)
    positives = [v for v, y in zip(values, labels) if y]
    negatives = [v for v, y in zip(values, labels) if not y]
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives]
    auroc = ranking_scores(scores, torch.tensor(labels, dtype=torch.float32))["auroc"]
    assert auroc == pytest.approx(sum(pairs) / len(pairs), abs=1e-6)


def test_allocation_stats_by_hand():
    counts = torch.tensor([16, 2, 9, 0, 4])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    stats = allocation_stats(counts, labels, k_max=16, keep_tokens=8)
    assert stats == {
        "relevant_segments": 3,
        "relevant_kept": 2,  # 16 and 9 tokens are ≥ 8; 4 is not
        "relevant_kept_share": 2 / 3,
        "tokens_relevant": 29,
        "tokens_irrelevant": 2,
        "needle_recall": 29 / 48,
    }


def test_report_pools_videos_and_keeps_the_per_video_numbers():
    videos = [
        ScoredVideo("a", "q", torch.tensor([0.9, 0.1, 0.2, 0.3]), torch.tensor([1.0, 0, 0, 0]), torch.arange(4.0), [(0, 2)]),
        ScoredVideo("b", "q", torch.tensor([0.5, 0.6]), torch.tensor([0.0, 0.0]), torch.arange(2.0), [(9, 9)]),
    ]  # fmt: skip
    report = routing_report(videos, UniformAllocator(), [8], k_max=4, k_min=1, keep_tokens=2)
    assert [v["auroc"] for v in report["videos"]] == [1.0, None]
    # uniform: 8 // 4 = 2 tokens per segment of video a, 4 each in video b (k_max 4)
    assert report["videos"][0]["budgets"]["8"]["needle_recall"] == 0.5
    overall = report["overall"]
    assert (overall["videos"], overall["segments"], overall["relevant"]) == (2, 6, 1)
    assert overall["auroc"] == pytest.approx(1.0) and overall["mean_video_auroc"] == 1.0
    assert overall["budgets"]["8"]["tokens_irrelevant"] == 2 * 3 + 4 * 2


def test_route_refuses_files_without_spans_and_bad_switches(tiny_tempo_dir, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    conversation = [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}]
    rows.write_text(json.dumps({"video": "v.mp4", "conversations": conversation}) + "\n")
    base = ["route", "--model", str(tiny_tempo_dir), "--annotations", str(rows), "--output", str(tmp_path / "o")]
    assert main(base) == 2
    assert "none of its 1 valid rows carries relevant_spans" in capsys.readouterr().err
    assert main([*base, "--allocator", "atta"]) == 2
    assert "--allocator atta" in capsys.readouterr().err
    assert main([*base, "--budget", "64,x"]) == 2
    assert "--budget 64,x: give comma-separated whole numbers" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
