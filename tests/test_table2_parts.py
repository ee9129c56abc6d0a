"""The parts of the Table 2 benchmark (``benchmarks/table2_*.py``) that decide its numbers, checked fast.

The spliced task must put exactly one asked shape in each video, intervals and AUROC must be the
textbook ones (hand-worked numbers), the ordering check must fail when two intervals touch, and the
curriculum must grow from 2 segments to N. ``TempoModel.forward`` with a cached compressor output
must give the loss it gives when it compresses itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from table2_eval import per_video_auroc, wilson  # noqa: E402
from table2_report import check_ordering  # noqa: E402
from table2_task import QUESTIONS, Video, make_pool, splice  # noqa: E402
from table2_train import AnswerSettings, segments_at  # noqa: E402

from tempo_kit.data.synthetic import COLOURS, SHAPES  # noqa: E402
from tempo_kit.data.synthetic_events import event_segment_frames  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    return make_pool(16, seed=0, split="test", size=(32, 32), stripes=2)


def test_event_segment_paints_the_stripes_top_to_bottom():
    frames = event_segment_frames(np.random.default_rng(0), "square", ["red", "blue"], size=(32, 32), window=3)
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
    column = frames[0, :, 16]  # the square's middle column: red above blue
    assert tuple(column[8]) == COLOURS["red"] and tuple(column[23]) == COLOURS["blue"]
    assert (frames[:, 8, 16] == frames[0, 8, 16]).all()  # the shape stays while the background drifts


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), segments=st.integers(2, 12))
def test_every_spliced_video_shows_the_asked_shape_once_at_its_needle(pool, seed, segments):
    for video in splice(pool, 4, segments, torch.Generator().manual_seed(seed)):
        shapes = pool.shapes[video.segments]
        assert int((shapes == video.shape).sum()) == 1 and int(shapes[video.needle]) == video.shape
        assert video.answer == " ".join(pool.colours[int(video.segments[video.needle])])
        assert SHAPES[video.shape] in video.question and video.question == QUESTIONS[video.shape]


def test_wilson_interval_matches_the_hand_worked_one():
    low, high = wilson(50, 100)  # centre 0.5, half-width 1.96·√(0.0025 + 1.96²/40000)/(1 + 1.96²/100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)


def test_per_video_auroc_counts_ties_half():
    video = Video(torch.arange(3), 0, needle=0, answer="")
    assert per_video_auroc([torch.tensor([0.9, 0.1, 0.5])], [video]) == 1.0
    assert per_video_auroc([torch.tensor([0.1, 0.9, 0.5])], [video]) == 0.0
    assert per_video_auroc([torch.tensor([0.5, 0.5, 0.1])], [video]) == 0.75


def _document(bounds: dict[str, tuple[float, float]]) -> dict:
    rows = {f"{name}|96": {"accuracy": {"low": low, "high": high}} for name, (low, high) in bounds.items()}
    return {"args": {"budgets": "96"}, "summary": {"rows": rows}}


def test_ordering_check_needs_disjoint_intervals():
    bounds = {"top-k": (0.8, 0.9), "ATA (released)": (0.7, 0.9), "subsample (paper's uniform)": (0.5, 0.6),
              "uniform (even split)": (0.5, 0.69), "random": (0.3, 0.4), "adversarial": (0.0, 0.1)}  # fmt: skip
    assert check_ordering(_document(bounds)) == {"96": {"subsample (paper's uniform)": True, "uniform (even split)": True}}
    bounds["uniform (even split)"] = (0.5, 0.7)  # touches ATA's lower bound
    bounds["random"] = (0.3, 0.5)  # touches the paper's uniform
    assert check_ordering(_document(bounds)) == {"96": {"subsample (paper's uniform)": False, "uniform (even split)": False}}


def test_curriculum_grows_from_two_segments_to_n():
    plan = AnswerSettings(steps=100, num_segments=16, curriculum=0.5)
    lengths = [segments_at(step, plan) for step in range(100)]
    assert lengths[0] == 2 and lengths[49] < 16 and lengths[50:] == [16] * 50
    assert lengths == sorted(lengths)
    assert segments_at(0, AnswerSettings(steps=100, num_segments=16, curriculum=0.0)) == 16


def test_forward_with_a_cached_compressor_output_gives_the_same_loss(tiny_tempo_dir):
    from table2_task import train_batch

    from tempo_kit.model import TempoModel
    from tempo_kit.types import CompressorOutput

    model = TempoModel.from_pretrained(tiny_tempo_dir).eval()
    pool = make_pool(4, seed=0, split="train", size=(32, 32), stripes=2)
    videos = splice(pool, 2, 3, torch.Generator().manual_seed(0))
    batch = train_batch(model.tokenizer, pool, videos)
    with torch.no_grad():
        compressed = model.compress(batch)
        own = model(batch).loss
        cached = model(batch, compressed=compressed).loss
        blank = CompressorOutput(torch.zeros_like(compressed.memory), compressed.relevance, compressed.num_segments)
        blanked = model(batch, compressed=blank).loss
        cut = model(batch, compressed=compressed, allocate=True, allocator="topk", budget=32, k_min=4)
    assert torch.equal(own, cached) and not torch.equal(own, blanked)  # the given memory is the one read
    assert [sorted(c.tolist()) for c in cut.counts] == [[0, 16, 16]] * 2  # top-k's counts, not the config's ATA
