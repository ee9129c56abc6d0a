"""Decoding ahead of the compressor: same answers as the serial pipeline, bounded chunks, clean threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.data.synthetic import read_counter, write_counter_video
from tempo_kit.inference.overlap import Prefetch, _group_into_chunks, stream_segments
from tempo_kit.video.reading import Sampling


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory):
    """37 frames at 2 fps (18.5 s): 5 windows of 8 at inference, 10 of 4 (the last a lone frame)."""
    from tempo_kit.data.synthetic import write_counter_video

    return write_counter_video(tmp_path_factory.mktemp("overlap") / "counter.mp4", 37, 2.0, size=(96, 128))


@pytest.mark.slow
@pytest.mark.parametrize("cut", ["segments", "tokens"])
def test_overlapped_answers_equal_the_serial_pipeline(letter_model, counter_video, cut):
    from tempo_kit.inference.api import TempoPipeline

    # one segment per compressor call: chunks of 2 segments, so the video arrives in 3 chunks;
    # or calls cut by a token budget that holds 2 of this video's segments (padded), 8 allowed
    limits = {"segment_batch_size": 1} if cut == "segments" else {}
    pipe = TempoPipeline.from_pretrained(letter_model, compressor=limits)
    asked = {"query": "Which letter? (A) one (B) two (C) three (D) four", "max_new_tokens": 2}
    if cut == "tokens":  # a budget that holds 2 of this video's segments (padded): calls of 2, 2, 1
        from tempo_kit.model.compression import call_plan

        compressor, prompt = pipe.model.compressor, pipe.question(asked["query"]).system_prompt
        shaped = next(stream_segments(counter_video, Sampling.inference(), 5)[1])
        compressor.call_token_budget = 2 * max(compressor.segment_tokens(shaped, asked["query"], prompt))
        assert call_plan(compressor, [shaped], [asked["query"]], prompt) == [2, 2, 1]
    serial = pipe.answer(video=counter_video, **asked)
    overlapped = pipe.answer(video=counter_video, overlap=True, **asked)
    assert overlapped.answer == serial.answer
    assert overlapped.allocation.counts.tolist() == serial.allocation.counts.tolist()
    assert torch.allclose(overlapped.allocation.relevance, serial.allocation.relevance, atol=1e-6)
    assert torch.equal(overlapped.allocation.times, serial.allocation.times)
    assert (overlapped.num_frames, overlapped.duration) == (serial.num_frames, serial.duration) == (37, 18.5)
    assert overlapped.svlm_inputs == serial.svlm_inputs
    assert set(overlapped.timings) == set(serial.timings)
    # chunks are 2 whole compressor calls: of 1 segment each, or of 2, 2 and 1 under the budget
    assert overlapped.settings["overlap_chunks"] == ([2, 2, 1] if cut == "segments" else [4, 1])
    assert serial.settings["overlap_chunks"] is None


def test_chunks_follow_a_plan_made_from_the_final_frame_size(counter_video, tiny_checkpoints):
    """A planning function sees the video's segments at their final frame size without pixels, so
    a compressor counts their tokens exactly as it will on the decoded chunks."""
    from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor

    compressor = Qwen3VLCompressor(pretrained=str(tiny_checkpoints["svlm"]), k_max=4)
    seen = {}

    def plan(shaped):
        seen["counts"] = compressor.segment_tokens(shaped, "Which letter?")
        seen["bytes"] = shaped.frames.untyped_storage().nbytes()
        return [2, 1, 2]

    _, chunks, _ = stream_segments(counter_video, Sampling.inference(), plan)
    parts = list(chunks)
    assert [len(p) for p in parts] == [2, 1, 2]
    decoded_counts = [n for p in parts for n in compressor.segment_tokens(p, "Which letter?")]
    assert seen["counts"] == decoded_counts and seen["bytes"] == 1
    with pytest.raises(ValueError, match=r"chunk plan \[2, 2\] does not cover the video's 5 segments"):
        stream_segments(counter_video, Sampling.inference(), lambda shaped: [2, 2])


def test_chunks_hold_the_serial_segments_and_the_timeline_no_frames(counter_video):
    from tempo_kit.video import load_video, make_segments

    sampling = Sampling.inference().updated({"preprocessing": "qwen3_vl", "window": 4})
    serial = make_segments(load_video(counter_video, **sampling.load_arguments()), 4)
    timeline, chunks, facts = stream_segments(counter_video, sampling, chunk_segments=3)
    assert timeline.frames.numel() == 0 and len(timeline) == len(serial) == 10
    assert torch.equal(timeline.times, serial.times) and torch.equal(timeline.lengths, serial.lengths)
    parts = list(chunks)
    assert [len(p) for p in parts] == [3, 3, 3, 1]  # host memory: one chunk of frames at a time
    for name in ("frames", "frame_times", "times", "lengths"):
        assert torch.equal(torch.cat([getattr(p, name) for p in parts]), getattr(serial, name)), name
    assert facts == {
        "num_frames": 37, "duration": 18.5, "real_fps": 2.0, "source": str(counter_video), "chunk_sizes": [3, 3, 3, 1]
    }


def test_prefetch_runs_at_most_depth_ahead_and_passes_errors_on():
    produced = []

    def items():
        for index in range(10):
            produced.append(index)
            yield index

    seen = []
    for item in Prefetch(items(), depth=2):
        time.sleep(0.02)
        seen.append(item)
        assert len(produced) <= len(seen) + 3  # 2 queued + 1 being put
    assert seen == list(range(10))

    def broken():
        yield 1
        raise ValueError("unreadable frame 7")

    with pytest.raises(ValueError, match="unreadable frame 7"):
        list(Prefetch(broken()))

    before = threading.active_count()
    for item in Prefetch(iter(range(100)), depth=1):
        if item == 3:
            break  # leaving early stops the producer
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="depth must be at least 1"):
        Prefetch(iter([]), depth=0)


@settings(max_examples=60, deadline=None)
@given(
    repeats=st.lists(st.integers(1, 3), min_size=1, max_size=40),
    window=st.integers(1, 8),
    chunk_segments=st.integers(1, 5),
    piece=st.integers(1, 7),
)
def test_one_decoding_pass_regroups_into_the_serial_segments(repeats, window, chunk_segments, piece):
    """Whatever pieces the decoder hands over and however often a frame is sampled (short videos
    repeat indices), the chunks hold exactly the serial path's segment frames."""
    from tempo_kit.video import make_segments
    from tempo_kit.video.segments import window_positions

    unique_frames = torch.arange(len(repeats), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 1, 3)
    inverse = np.repeat(np.arange(len(repeats)), repeats)  # sampled position -> unique frame
    serial = make_segments(unique_frames[torch.from_numpy(inverse)], window)
    skeleton = make_segments(torch.empty((len(inverse), 0, 0, 3), dtype=torch.uint8), window)
    pieces = iter(unique_frames.split(piece))
    starts, _, index = window_positions(len(inverse), window, window)
    sizes = [min(chunk_segments, len(starts) - first) for first in range(0, len(starts), chunk_segments)]
    chunks = list(_group_into_chunks(pieces, torch.from_numpy(inverse)[index], skeleton, sizes))
    assert [len(c) for c in chunks][:-1] == [chunk_segments] * (len(chunks) - 1)
    assert torch.equal(torch.cat([c.frames for c in chunks]), serial.frames)
    assert torch.equal(torch.cat([c.lengths for c in chunks]), serial.lengths)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_streamed_frames_are_exact_across_many_gops_with_b_frames(tmp_path, backend):
    """Short GOPs with B-frames: rewinding decord between batches, or PyAV's single pass, must
    still deliver every sampled frame, in order."""
    from tempo_kit.video import load_video

    options = {"preset": "veryfast", "threads": "1", "g": "12", "bf": "3"}
    path = write_counter_video(tmp_path / "gops.mp4", 240, 24, (48, 64), options=options)
    sampling = Sampling.inference().updated(
        {"backend": backend, "preprocessing": "qwen3_vl", "fps": 7.0, "window": 4}
    )
    _, chunks, facts = stream_segments(path, sampling, chunk_segments=3)
    frames = torch.cat([c.frames for c in chunks]).flatten(0, 1)[: facts["num_frames"]]
    serial = load_video(path, **sampling.load_arguments())
    assert [read_counter(f.numpy()) for f in frames] == serial.indices.tolist()


STREAM_PEAK = r"""
import json, resource, sys
from tempo_kit.inference.overlap import stream_segments
from tempo_kit.video.reading import Sampling
values = {"backend": sys.argv[2], "preprocessing": "qwen3_vl", "max_frames": 2048}
_, chunks, facts = stream_segments(sys.argv[1], Sampling.inference().updated(values), chunk_segments=4)
for chunk in chunks:
    del chunk
print(json.dumps({"frames": facts["num_frames"], "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


@pytest.fixture(scope="module")
def short_and_long_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("lengths")
    return {n: write_counter_video(root / f"v{n}.mp4", n, 2.0, size=(180, 320)) for n in (384, 1536)}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_streamed_memory_stays_flat_in_video_length(short_and_long_videos, backend):
    """Host memory of the streamed decode is bounded by the chunk: 4× the video, same peak. (Decord
    without its rewind grew 404 → 508 MB here; the bound below is 20 MB.)"""
    peaks = {}
    for count, path in short_and_long_videos.items():
        out = subprocess.run(
            [sys.executable, "-c", STREAM_PEAK, str(path), backend], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout)
        assert result["frames"] == count
        peaks[count] = result["peak"]
    extra_frames = (1536 - 384) * 180 * 320 * 3  # what holding the video's frames would add
    assert peaks[1536] - peaks[384] < 0.1 * extra_frames, {n: p / 1e6 for n, p in peaks.items()}
