"""Segments (compatibility §1): windows, stride, the lone-frame tail, centre times; images and text."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tempo_kit.errors import MediaError
from tempo_kit.video import blank_image_segments, load_image, make_segments, segment_starts


def numbered_frames(t: int, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.arange(t, dtype=torch.uint8)[:, None, None, None].expand(t, h, w, 3).contiguous()


@given(t=st.integers(1, 255), window=st.integers(1, 16))
def test_non_overlapping_windows_cover_every_frame_once(t, window):
    seg = make_segments(numbered_frames(t, 2, 2), window)
    assert len(seg) == math.ceil(t / window)
    real = [seg.frames[i, : min(window, t - i * window), 0, 0, 0].tolist() for i in range(len(seg))]
    assert sum(real, []) == list(range(t))  # every frame once, in order
    # the released segment tag (compatibility §1): a bare tensor's real_fps defaults to 2
    expected = [(i * window + window / 2) / 2.0 for i in range(len(seg))]
    assert seg.times.tolist() == pytest.approx(expected)
    # padding repeats the last frame; a lone last frame counts two
    last_real = t - (len(seg) - 1) * window
    assert seg.frames[-1, last_real:, 0, 0, 0].eq(t - 1).all()
    expected_last = 2 if (last_real == 1 and window > 1) else last_real
    assert seg.lengths[-1].item() == expected_last
    assert seg.lengths[:-1].eq(window).all()


def test_tail_examples():
    seg = make_segments(numbered_frames(9), 4)  # 4 + 4 + 1
    assert seg.frames.shape[:2] == (3, 4)
    assert seg.frames[2, :, 0, 0, 0].tolist() == [8, 8, 8, 8]
    assert seg.lengths.tolist() == [4, 4, 2]
    assert seg.times.tolist() == [1.0, 3.0, 5.0]
    seg8 = make_segments(numbered_frames(20), 8)  # inference window: 8 + 8 + 4
    assert seg8.lengths.tolist() == [8, 8, 4]
    assert seg8.times.tolist() == [2.0, 6.0, 10.0]


def test_stride_overlap():
    seg = make_segments(numbered_frames(10), 4, stride=2)
    assert segment_starts(10, 4, 2) == [0, 2, 4, 6]
    assert seg.frames[:, 0, 0, 0, 0].tolist() == [0, 2, 4, 6]
    assert seg.times.tolist() == [(i * 2 + 2) / 2 for i in range(4)]


def test_frame_times_and_centre_from_real_timestamps():
    frames = numbered_frames(6)
    times = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]) * 3  # frames 1.5 s apart in the container
    # released time base: positions / real_fps (here 2/3 frame per second); padding continues them
    seg = make_segments(frames, 4, real_fps=2 / 3)
    assert seg.frame_times[1].tolist() == pytest.approx([6.0, 7.5, 9.0, 10.5])
    assert seg.times.tolist() == pytest.approx([3.0, 9.0])  # (i·4 + 2) / (2/3)
    real = make_segments(frames, 4, frame_times=times, time_base="container")
    assert real.frame_times[1].tolist() == pytest.approx([6.0, 7.5, 9.0, 10.5])  # pads step 1.5 s on
    assert real.times.tolist() == pytest.approx([2.25, 6.75])  # mean of the real frames' times
    with pytest.raises(ValueError, match="needs frame_times"):
        make_segments(frames, 4, time_base="container")


def test_facts_worked_examples_of_segment_tags():
    # compatibility §1: 20 frames over 10.25 s (real_fps 1.951) → 2.1, 6.2, 10.2 s;
    # 32 frames over 60 s (real_fps 0.533) → 7.5, 22.5, 37.5, 52.5 s
    seg = make_segments(numbered_frames(20), 8, real_fps=20 / 10.25)
    assert [f"{t:.1f}" for t in seg.times.tolist()] == ["2.1", "6.2", "10.2"]
    seg = make_segments(numbered_frames(32), 8, real_fps=32 / 60)
    assert seg.times.tolist() == pytest.approx([7.5, 22.5, 37.5, 52.5])


def test_image_is_one_segment(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.full((50, 70, 3), 200, np.uint8)).save(path)
    clip = load_image(path)
    assert clip.kind == "image" and tuple(clip.frames.shape) == (1, 48, 64, 3)
    seg = make_segments(clip, 8)
    assert seg.kind == "image" and tuple(seg.frames.shape) == (1, 1, 48, 64, 3)
    assert seg.times.tolist() == [0.0]


def test_image_native_resolution_and_pixel_cap(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((800, 1200, 3), np.uint8)).save(path)
    assert tuple(load_image(path).frames.shape[1:3]) == (800, 1200)  # native (multiples of 16)
    capped = load_image(path, max_pixels=256 * 256)
    h, w = capped.frames.shape[1:3]
    assert h * w <= 256 * 256 * 1.1 and h % 16 == 0 and w % 16 == 0


def test_image_modes_convert_to_rgb(tmp_path):
    for mode in ("L", "RGBA", "P", "I;16"):
        path = tmp_path / f"m_{mode.replace(';', '')}.png"
        Image.new(mode, (32, 32)).save(path)
        assert tuple(load_image(path).frames.shape) == (1, 32, 32, 3)


def test_blank_image_segments():
    seg = blank_image_segments()
    assert seg.kind == "text" and tuple(seg.frames.shape) == (1, 1, 336, 336, 3)
    assert seg.frames.eq(255).all()


def test_images_that_fail_to_open(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(MediaError, match="bad.jpg"):
        load_image(bad)
    good = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(MediaError, match="truncated.jpg"):
        load_image(truncated)
    with pytest.raises(MediaError, match="not found"):
        load_image(tmp_path / "missing.png")
