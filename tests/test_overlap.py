"""Decoding ahead of the compressor: same answers as the serial pipeline, bounded chunks, clean threads."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tempo_kit.inference.overlap import Prefetch, stream_segments
from tempo_kit.video.reading import Sampling


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory):
    """37 frames at 2 fps (18.5 s): 5 windows of 8 at inference, 10 of 4 (the last a lone frame)."""
    from tempo_kit.data.synthetic import write_counter_video

    return write_counter_video(tmp_path_factory.mktemp("overlap") / "counter.mp4", 37, 2.0, size=(96, 128))


@pytest.mark.slow
def test_overlapped_answers_equal_the_serial_pipeline(letter_model, counter_video):
    from tempo_kit.inference.api import TempoPipeline

    # one segment per compressor call: chunks of 2 segments, so the video arrives in 3 chunks
    pipe = TempoPipeline.from_pretrained(letter_model, compressor={"segment_batch_size": 1})
    asked = {"query": "Which letter? (A) one (B) two (C) three (D) four", "max_new_tokens": 2}
    serial = pipe.answer(video=counter_video, **asked)
    overlapped = pipe.answer(video=counter_video, overlap=True, **asked)
    assert overlapped.answer == serial.answer
    assert overlapped.allocation.counts.tolist() == serial.allocation.counts.tolist()
    assert torch.allclose(overlapped.allocation.relevance, serial.allocation.relevance, atol=1e-6)
    assert torch.equal(overlapped.allocation.times, serial.allocation.times)
    assert (overlapped.num_frames, overlapped.duration) == (serial.num_frames, serial.duration) == (37, 18.5)
    assert overlapped.svlm_inputs == serial.svlm_inputs
    assert set(overlapped.timings) == set(serial.timings)


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
    assert facts == {"num_frames": 37, "duration": 18.5, "real_fps": 2.0, "source": str(counter_video)}


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
