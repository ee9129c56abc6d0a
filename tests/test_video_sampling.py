"""compatibility §1 sampling rules as pure functions: frame count, indices and resized size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.video.sampling import num_sampled_frames, resized_size, sample_indices


@given(
    duration=st.floats(0, 20000, allow_nan=False),
    max_frames=st.integers(4, 4096),
)
def test_frame_count_is_round_duration_times_two_clamped(duration, max_frames):
    n = num_sampled_frames(duration, 2.0, 4, max_frames)
    assert n == min(max(round(duration * 2), 4), max_frames)
    assert 4 <= n <= max_frames


def test_frame_count_examples():
    assert num_sampled_frames(10.0) == 20
    assert num_sampled_frames(0.3) == 4  # at least 4
    assert num_sampled_frames(3600.0) == 1024  # capped
    assert num_sampled_frames(3600.0, max_frames=2048) == 2048
    assert num_sampled_frames(2.25) == 4  # 4.5 rounds half to even
    assert num_sampled_frames(5.25) == 10  # 10.5 → 10


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_frame_count_rejects_bad_duration(bad):
    with pytest.raises(ValueError, match="duration"):
        num_sampled_frames(bad)


@given(total=st.integers(1, 200000), n=st.integers(1, 2048))
def test_indices_are_rounded_linspace(total, n):
    idx = sample_indices(total, n)
    expected = [round(i * (total - 1) / (n - 1)) if n > 1 else 0 for i in range(n)]
    assert len(idx) == n and idx.dtype == np.int64
    assert idx[0] == 0 and idx[-1] == (total - 1 if n > 1 else 0)
    assert np.all(np.diff(idx) >= 0) and idx.max() <= total - 1
    # equal to exact rational linspace except float ties (±0 at the ends, at most 1 off mid-way)
    assert np.abs(idx - np.array(expected)).max() <= 1


def test_indices_example_and_repeats():
    assert sample_indices(300, 20).tolist() == [
        0,
        16,
        31,
        47,
        63,
        79,
        94,
        110,
        126,
        142,
        157,
        173,
        189,
        205,
        220,
        236,
        252,
        268,
        283,
        299,
    ]
    assert sample_indices(1, 4).tolist() == [0, 0, 0, 0]
    assert sample_indices(2, 4).tolist() == [0, 0, 1, 1]  # 0, 1/3, 2/3, 1 rounded


@given(h=st.integers(1, 8000), w=st.integers(1, 8000))
def test_resized_size_rules(h, w):
    rh, rw = resized_size(h, w)
    assert rh % 16 == 0 and rw % 16 == 0 and rh >= 16 and rw >= 16
    assert max(rh, rw) <= max(512, 16)
    scale = min(1.0, 512 / max(h, w))
    # each side within half a multiple of the exact scaled side (or the 16-px floor)
    for got, side in ((rh, h), (rw, w)):
        assert abs(got - side * scale) <= 8 + 1e-9 or got == 16


def test_resized_size_examples():
    assert resized_size(1080, 1920) == (288, 512)
    assert resized_size(1920, 1080) == (512, 288)
    assert resized_size(720, 1280) == (288, 512)
    assert resized_size(96, 128) == (96, 128)  # never enlarged
    assert resized_size(67, 99) == (64, 96)
    assert resized_size(4320, 7680) == (288, 512)
    assert resized_size(10, 4000) == (16, 512)  # extreme aspect keeps one multiple
    assert resized_size(1080, 1920, max_long_edge=None) == (1088, 1920)
    assert resized_size(500, 500, max_long_edge=504) == (496, 496)  # never above a non-multiple cap
    assert math.isclose(resized_size(2160, 3840)[1] / resized_size(2160, 3840)[0], 16 / 9, rel_tol=0.01)
