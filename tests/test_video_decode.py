"""Decoding generated videos of several codecs, containers, odd sizes and frame rates.

Every test clip shows its own frame index (``counter_frame``), so each check is against the
file's content, not against another decoder.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from tempo_kit.data.synthetic import read_counter, write_counter_video
from tempo_kit.video import load_video, make_segments, num_sampled_frames, resized_size, sample_indices
from tempo_kit.video.preprocessing import ReleasedGeometry

# name, writer kwargs, (H, W), fps, frames, exact decord == pyav at native size
CASES = [
    ("h264.mp4", {"codec": "libx264"}, (96, 128), 25, 61, True),
    ("mpeg4_odd.mkv", {"codec": "mpeg4", "options": {}}, (67, 99), Fraction(30000, 1001), 50, False),
    ("vp9_odd.webm", {"codec": "libvpx-vp9", "options": {}}, (67, 99), 12, 40, False),
    ("mjpeg.avi", {"codec": "mjpeg", "pix_fmt": "yuvj444p", "options": {}}, (48, 64), 7.5, 23, True),
    ("h264_444_odd.mp4", {"codec": "libx264", "pix_fmt": "yuv444p"}, (75, 101), 24, 30, True),
    ("h264_wide.mov", {"codec": "libx264"}, (40, 600), 15, 17, True),
    ("h264_one_frame.mp4", {"codec": "libx264"}, (64, 64), 30, 1, True),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {
        name: (write_counter_video(root / name, n, fps, size, **kw), size, fps, n, exact)
        for name, kw, size, fps, n, exact in CASES
    }


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("resize", ["decoder", "pil", "torch"])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_frames_indices_timestamps_exact(videos, name, backend, resize):
    path, (h, w), fps, n, _ = videos[name]
    clip = load_video(path, backend=backend, resize=resize)
    expected_count = 1 if n == 1 else num_sampled_frames(n / float(fps))
    expected_idx = sample_indices(n, expected_count)
    assert clip.fps == pytest.approx(float(fps), rel=1e-9)
    assert clip.num_source_frames == n
    assert clip.duration == pytest.approx(n / float(fps))
    assert clip.indices.tolist() == expected_idx.tolist()
    assert torch.equal(clip.timestamps, torch.from_numpy(expected_idx).double() / clip.fps)
    assert tuple(clip.frames.shape) == (expected_count, *ReleasedGeometry.of(h, w).final, 3)
    assert clip.real_fps == pytest.approx(expected_count / (n / float(fps)))
    assert clip.frames.dtype == torch.uint8
    # the content: each frame is the one its index names
    assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_decord_equals_reference_backend(videos, name):
    """Same indices, same resize path (PIL): decord's frames are PyAV's frames.

    Exact for H.264 (4:2:0 even sizes, 4:4:4 odd sizes) and MJPEG. For 4:2:0 streams of odd width
    (MPEG-4 Part 2, VP9) the two libraries convert YUV→RGB through different swscale paths: the
    same frame (checked by its counter), up to ~1 grey level apart on average.
    """
    path, _, _, _, exact = videos[name]
    a = load_video(path, backend="decord", resize="pil")
    b = load_video(path, backend="pyav", resize="pil")
    assert torch.equal(a.indices, b.indices)
    diff = (a.frames.int() - b.frames.int()).abs()
    if exact:
        assert int(diff.max()) == 0
    else:
        assert float(diff.float().mean()) < 3.0


def test_resize_paths_agree(videos):
    path = videos["h264_wide.mov"][0]
    decoder, pil, torch_ = (
        load_video(path, resize=r, preprocessing="qwen3_vl").frames.int() for r in ("decoder", "pil", "torch")
    )
    assert float((decoder - pil).abs().float().mean()) < 3.0  # swscale bicubic vs PIL bicubic
    diff = (torch_ - pil).abs()  # antialiased bicubic, two implementations: rounding at hard edges
    assert float(diff.float().mean()) < 0.5 and int(diff.max()) <= 8


def test_pil_resize_is_per_frame_pil_bicubic(videos):
    """decord get_batch at full resolution + per-frame PIL bicubic equals resize="pil" (qwen3_vl sizes)."""
    import decord
    from PIL import Image

    path, (h, w), _, n, _ = videos["h264_wide.mov"]
    clip = load_video(path, resize="pil", preprocessing="qwen3_vl")
    frames = decord.VideoReader(str(path)).get_batch(list(clip.indices.numpy())).asnumpy()
    height, width = resized_size(h, w)
    released = np.stack(
        [np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames]
    )
    assert np.array_equal(clip.frames.numpy(), released)


def test_max_frames_subsamples_uniformly(videos):
    path, _, fps, n, _ = videos["h264.mp4"]
    clip = load_video(path, fps=25.0, max_frames=8)  # asks 61 frames, capped at 8
    assert clip.indices.tolist() == sample_indices(n, 8).tolist()
    assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()


def test_one_frame_video_gives_one_frame(videos):
    # compatibility §1: a 1-frame video gives 1 frame; D = 1/30 s, so real_fps = 1 / D = 30
    clip = load_video(videos["h264_one_frame.mp4"][0])
    assert clip.indices.tolist() == [0] and clip.real_fps == pytest.approx(30.0)
    segments = make_segments(clip, 4)
    # one window; the lone frame counts twice for the SVLM; tag (0 + 4/2) / 30 s
    assert len(segments) == 1 and segments.lengths.tolist() == [2]
    assert segments.times.tolist() == pytest.approx([2 / 30])
    assert segments.frame_times[0, :2].tolist() == pytest.approx([0.0, 1 / 30])  # the pad takes position 1


def test_custom_fps_and_size(videos):
    path, _, _, n, _ = videos["h264.mp4"]
    clip = load_video(path, fps=5.0, max_long_edge=64, size_multiple=32, preprocessing="qwen3_vl")
    assert len(clip) == num_sampled_frames(n / 25, 5.0)
    assert tuple(clip.frames.shape[1:3]) == (64, 64)  # 96x128 → 48x64 → sides rounded to 32


def test_peak_memory_bounded_for_1080p(tmp_path):
    """Decoding 60 frames of a 1080p clip grows RSS by the resized clip and about one chunk, far
    less than the full-resolution video (PyAV: no decoder-side buffering, so this is the kit's own
    bound; decord keeps its own frame buffers, see ``test_streamed_memory_stays_flat``)."""
    from tempo_kit.video.decode import DEFAULT_CHUNK_BYTES

    path = write_counter_video(tmp_path / "hd.mp4", 60, 10, (1080, 1920))
    code = (
        "import resource, sys\n"
        "from tempo_kit.video import load_video\n"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "load_video(sys.argv[1], fps=0.5, backend='pyav')\n"  # warm-up: libraries and decoder set-up
        "base = peak()\n"
        "clip = load_video(sys.argv[1], fps=10.0, backend='pyav')\n"
        "print(len(clip), clip.frames.numel(), peak() - base)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    frames, clip_bytes, growth = (int(x) for x in out.stdout.split())
    full_resolution = frames * 1080 * 1920 * 3
    assert frames == 60
    bound = clip_bytes + DEFAULT_CHUNK_BYTES + 32 * 2**20  # the clip, one native chunk, slack
    assert growth < bound < full_resolution / 2, f"RSS grew {growth / 1e6:.0f} MB, bound {bound / 1e6:.0f} MB"


def test_frames_are_real_pixels(videos):
    clip = load_video(videos["h264.mp4"][0])
    assert np.ptp(clip.frames.numpy()) > 200  # not blank


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_exact_frames_across_many_gops_with_b_frames(tmp_path, backend):
    """Short GOPs with B-frames make decord seek between key frames: every frame must still be right."""
    options = {"preset": "veryfast", "threads": "1", "g": "12", "bf": "3"}
    path = write_counter_video(tmp_path / "gops.mp4", 240, 24, (48, 64), options=options)
    for fps in (2.0, 7.0, 23.0):
        clip = load_video(path, fps=fps, backend=backend)
        assert clip.indices.tolist() == sample_indices(240, num_sampled_frames(10.0, fps)).tolist()
        assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()
