"""The torchcodec backend: the released pixels where it loads, a one-line fallback where it cannot.

torchcodec's wheels load only beside a CUDA build of torch with FFmpeg's shared libraries, so on
the CPU build the fallback tests run, and CI runs this file a second time in a venv holding the
index's CUDA torch and torchcodec (``.ci/run``), where the decoding tests run. Each clip shows its
own frame index (``counter_frame``), so each check is against the file's content.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tempo_kit.data.synthetic import read_counter, write_counter_video
from tempo_kit.video import load_video, num_sampled_frames, sample_indices
from tempo_kit.video.torchcodec_source import torchcodec_problem

PROBLEM = torchcodec_problem()
loads = pytest.mark.skipif(PROBLEM is not None, reason=f"{PROBLEM} (the fallback tests run instead)")
cannot_load = pytest.mark.skipif(PROBLEM is None, reason="torchcodec loads here (the decoding tests run instead)")

# name, writer kwargs, (H, W), fps, frames
CASES = [
    ("h264.mp4", {"codec": "libx264"}, (96, 128), 25, 61),
    ("h264_444_odd.mp4", {"codec": "libx264", "pix_fmt": "yuv444p"}, (75, 101), 24, 30),
    ("mjpeg.avi", {"codec": "mjpeg", "pix_fmt": "yuvj444p", "options": {}}, (48, 64), 7.5, 23),
    ("gops_b_frames.mp4", {"options": {"preset": "veryfast", "threads": "1", "g": "12", "bf": "3"}}, (48, 64), 24, 240),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchcodec")
    return {name: write_counter_video(root / name, n, fps, size, **kw) for name, kw, size, fps, n in CASES}


@cannot_load
def test_unloadable_torchcodec_falls_back_in_one_line(videos):
    """A user asking for torchcodec where it cannot load gets decord's frames and one line saying why."""
    path = videos["h264.mp4"]
    code = (
        "import sys\n"
        "from tempo_kit.video import load_video\n"
        f"a = load_video({str(path)!r}, backend='torchcodec')\n"
        f"b = load_video({str(path)!r}, backend='torchcodec')\n"  # said once per process, not per video
        f"c = load_video({str(path)!r}, backend='decord')\n"
        "assert (a.frames == c.frames).all() and (b.frames == c.frames).all()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "torchcodec" in lines[0] and "decoding with decord instead" in lines[0]
    assert "Traceback" not in run.stderr


@loads
@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_exact_path_gives_decords_pixels(videos, name):
    """Full-resolution RGB from torchcodec is swscale's, as decord's: the exact path (resize="pil",
    the released chain) is bit-identical, frame by frame, and each frame is the one its index names."""
    a = load_video(videos[name], backend="torchcodec", resize="pil")
    b = load_video(videos[name], backend="decord", resize="pil")
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.frames, b.frames)
    assert [read_counter(f.numpy()) for f in a.frames] == a.indices.tolist()


@loads
def test_frame_indices_exact_across_gops_at_several_rates(videos):
    path = videos["gops_b_frames.mp4"]
    for fps in (2.0, 7.0, 23.0):
        clip = load_video(path, fps=fps, backend="torchcodec")
        assert clip.indices.tolist() == sample_indices(240, num_sampled_frames(10.0, fps)).tolist()
        assert [read_counter(f.numpy()) for f in clip.frames] == clip.indices.tolist()


@loads
def test_decoder_resize_path_is_close_to_the_exact_path(videos):
    """torchcodec resizes bilinearly with antialiasing inside the decoder: same frames, close pixels."""
    fast = load_video(videos["h264.mp4"], backend="torchcodec", resize="decoder")
    exact = load_video(videos["h264.mp4"], backend="torchcodec", resize="pil")
    assert fast.frames.shape == exact.frames.shape
    assert [read_counter(f.numpy()) for f in fast.frames] == fast.indices.tolist()
    assert float(np.abs(fast.frames.numpy().astype(int) - exact.frames.numpy()).mean()) < 6.0


@loads
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device decodes torchcodec_cuda itself")
def test_torchcodec_cuda_without_a_gpu_decodes_on_the_cpu(videos):
    path = videos["h264.mp4"]
    code = (
        "from tempo_kit.video import load_video\n"
        f"a = load_video({str(path)!r}, backend='torchcodec_cuda')\n"
        f"b = load_video({str(path)!r}, backend='torchcodec')\n"
        "assert (a.frames == b.frames).all()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if line.strip()] == [
        "no CUDA device for torchcodec_cuda: decoding with torchcodec on the CPU instead"
    ]


@loads
def test_variable_frame_rate_on_the_container_time_base(tmp_path):
    """2 s of frames, a 10 s gap, 2 s of frames: torchcodec samples, measures and tags it by the real
    presentation times as decord and PyAV do (``tests/test_video_vfr.py``)."""
    pts_ms = [i * 100 for i in range(20)] + [12_000 + i * 100 for i in range(20)]
    path = write_counter_video(tmp_path / "gap.mkv", 40, 10, (48, 64), presentation_ms=pts_ms)
    released = load_video(path, backend="torchcodec")
    assert released.duration == pytest.approx(4.0)  # released parity: frames / average fps
    clips = [load_video(path, backend=backend, time_base="container") for backend in ("torchcodec", "pyav")]
    assert clips[0].duration == pytest.approx(14.0, abs=1e-6)
    assert clips[0].indices.tolist() == clips[1].indices.tolist()
    assert [read_counter(f) for f in clips[0].frames.numpy()] == clips[0].indices.tolist()
    assert clips[0].timestamps.numpy() == pytest.approx(clips[1].timestamps.numpy(), abs=1e-6)
