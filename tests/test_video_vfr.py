"""Variable-frame-rate video: 2 s of frames, a 10 s gap, 2 s of frames, written for real with PyAV.

The released time base (``index / fps``) reads such a Matroska file as 4 s long with every time after
the gap 10 s early; it stays so (released parity) but says so once, pointing at
``time_base: container``, which samples, measures and tags by the real presentation times on every
backend. Each frame shows its own index (``counter_frame``), so every check is against the content.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tempo_kit.data.synthetic import read_counter, write_counter_video
from tempo_kit.video import load_video, make_segments, sample_indices
from tempo_kit.video.frame_times import VFR_DRIFT_SECONDS, FrameTiming, presentation_indices

RATE = 10  # frames per second inside each burst
#: milliseconds of each frame: 20 frames from 0 s, then 20 frames from 12 s (a 10 s gap after 1.9 s)
PTS_MS = [i * 100 for i in range(20)] + [12_000 + i * 100 for i in range(20)]
BACKENDS = ["decord", "pyav"]


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    path = tmp_path_factory.mktemp("vfr") / "gap.mkv"  # Matroska: the frame rate is the nominal one
    return str(write_counter_video(path, len(PTS_MS), RATE, (48, 64), presentation_ms=PTS_MS))


def shown(clip) -> list[int]:
    return [read_counter(frame) for frame in clip.frames.numpy()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_released_time_base_stays_index_over_fps_and_warns_once(vfr, backend, caplog):
    """The default reading is the released one, bit for bit (4 s, indices spread by index), and one
    warning line names the real length and the fix."""
    from tempo_kit.video import frame_times

    frame_times._WARNED.discard(vfr)
    with caplog.at_level(logging.WARNING, logger="tempo_kit.video"):
        clip = load_video(vfr, backend=backend)
        load_video(vfr, backend=backend)  # said once per file
    assert clip.duration == 40 / RATE
    assert clip.indices.tolist() == sample_indices(40, 8).tolist()
    assert shown(clip) == clip.indices.tolist()
    assert torch.equal(clip.timestamps, clip.indices.double() / RATE)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert "variable frame rate" in warnings[0] and "time_base: container" in warnings[0]
    assert "14.0 s, not 4.0 s" in warnings[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_container_time_base_samples_measures_and_tags_by_real_time(vfr, backend):
    """``time_base: container``: 14 s long, 28 frames evenly spaced in time (the nearest frame to
    each instant), each stamped with its real presentation time, so tags after the gap are past 12 s."""
    clip = load_video(vfr, backend=backend, time_base="container")
    assert clip.duration == pytest.approx(14.0, abs=1e-6)
    assert len(clip) == 28
    real = np.asarray(PTS_MS) / 1000
    assert shown(clip) == clip.indices.tolist()  # the frame decoded is the frame indexed
    assert clip.timestamps.numpy() == pytest.approx(real[clip.indices.numpy()], abs=1e-6)
    targets = np.linspace(0, 13.9, 28)
    assert np.all(np.abs(real[clip.indices.numpy()] - targets) <= np.abs(real[:, None] - targets).min(0) + 1e-9)
    segments = make_segments(clip, 8, time_base="container")
    last = clip.indices[-4:]  # the last window: frames 24..39, all after the gap
    assert segments.times[-1].item() == pytest.approx(float(real[last.numpy()].mean()), abs=1e-6)
    assert segments.times[-1].item() > 12.0
    assert segments.frame_times[-1, 0].item() == pytest.approx(float(real[last[0]]), abs=1e-6)


def test_container_time_base_is_the_same_on_every_backend(vfr):
    decord, pyav = (load_video(vfr, backend=b, time_base="container") for b in BACKENDS)
    assert decord.indices.tolist() == pyav.indices.tolist()
    assert decord.timestamps.numpy() == pytest.approx(pyav.timestamps.numpy(), abs=1e-6)


def test_constant_rate_video_is_not_flagged_and_samples_as_released(tmp_path, caplog):
    """A constant-rate file: no warning, and the container time base picks the released frames."""
    path = write_counter_video(tmp_path / "cfr.mp4", 61, 25, (48, 64))
    with caplog.at_level(logging.WARNING, logger="tempo_kit.video"):
        released = load_video(path)
        container = load_video(path, time_base="container")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert container.indices.tolist() == released.indices.tolist()
    assert container.duration == pytest.approx(released.duration)
    assert container.timestamps.numpy() == pytest.approx(released.timestamps.numpy(), abs=1e-6)


def test_drift_threshold():
    """A video is variable when some frame sits more than VFR_DRIFT_SECONDS off ``index / fps``."""
    steady = FrameTiming.of(np.arange(100) / 10, 10.0)
    assert steady.drift == pytest.approx(0.0) and not steady.variable
    late = FrameTiming.of(np.r_[np.arange(50) / 10, 5 + VFR_DRIFT_SECONDS + np.arange(50) / 10], 10.0)
    assert late.variable


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 400), count=st.integers(1, 64), fps=st.sampled_from([7.5, 24.0, 25.0, 29.97, 30.0]))
@example(total=259, count=29, fps=7.5)  # linspace's 193.49999999999997 rounds down where time gives 193.5
def test_presentation_sampling_of_constant_rate_is_the_released_rule(total, count, fps):
    """On a constant-rate timeline, sampling by time is exactly ``round(linspace(0, N − 1, T))``,
    half-way points included (half to even)."""
    picked = presentation_indices(FrameTiming.of(np.arange(total) / fps, fps), count)
    assert picked.tolist() == sample_indices(total, count).tolist()


def test_presentation_sampling_across_a_gap_takes_the_nearer_side():
    timing = FrameTiming.of(np.asarray(PTS_MS) / 1000, RATE)
    picked = presentation_indices(timing, 28)
    targets = np.linspace(0, 13.9, 28)
    nearest = np.abs(timing.times[:, None] - targets).argmin(0)
    assert picked.tolist() == nearest.tolist()


def test_the_sampling_record_carries_the_container_time_base_to_the_decoder(vfr):
    """Every reader (data, inference, evaluation, prepared shards) decodes through
    ``Sampling.load_arguments``: the container time base reaches the decoder, and the released
    reading's arguments (which prepared shards fingerprint) are as they always were."""
    from tempo_kit.video.reading import Sampling

    assert "time_base" not in Sampling.inference().load_arguments()
    arguments = Sampling.inference(time_base="container").load_arguments()
    assert arguments["time_base"] == "container"
    assert load_video(vfr, **arguments).duration == pytest.approx(14.0, abs=1e-6)
