"""Multi-event synthetic videos: the question names the event, the spans follow the question."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tempo_kit.cli import main
from tempo_kit.data.synthetic import COLOURS, make_needle_dataset
from tempo_kit.data.synthetic_events import make_events_dataset
from tempo_kit.video import load_video, make_segments


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    out = tmp_path_factory.mktemp("events")
    path = make_events_dataset(out, 3, duration=24.0, fps=2, events=(2, 4), stripes=2, seed=5, split="val")
    return out, [json.loads(line) for line in path.read_text().splitlines()]


def test_answers_and_spans_follow_the_question(events):
    _, rows = events
    assert [r["category"] for r in rows] == ["colours", "order", "count"] * 3
    for row in rows:
        drawn = row["events"]
        assert 2 <= len(drawn) <= 4 and len({e["shape"] for e in drawn}) == len(drawn)
        for before, after in zip(drawn, drawn[1:]):
            assert before["end"] < after["start"]  # never overlapping, in time order
        asked = [drawn[i] for i in row["asked"]]
        assert row["relevant_spans"] == [[e["start"], e["end"]] for e in asked]
        assert row["conversations"][1]["value"] == row["answer"]
        question = row["conversations"][0]["value"]
        if row["category"] == "colours":
            (event,) = asked
            assert f"the {event['shape']}," in question and row["answer"] == " ".join(event["colours"])
        elif row["category"] == "order":
            first, second = asked
            assert first["start"] < second["start"] and row["answer"] == first["shape"]
            assert first["shape"] in question and second["shape"] in question
        else:
            assert row["answer"] == str(len(drawn)) and len(asked) == len(drawn)


def test_the_asked_event_is_drawn_where_and_how_the_row_says(events):
    out, rows = events
    row = rows[0]
    clip = load_video(out / row["video"], preprocessing="qwen3_vl")
    assert len(clip) == 48  # 24 s at 2 FPS
    times = clip.timestamps.numpy()
    frames = clip.frames.numpy()  # [T, H, W, 3]
    bright = frames.max(axis=(1, 2, 3)) > 180
    inside = np.zeros(len(times), dtype=bool)
    for event in row["events"]:
        inside |= (times >= event["start"]) & (times < event["end"])
    assert bright.tolist() == inside.tolist()
    segments = make_segments(clip, row["window"])
    for event in row["events"]:
        assert segments.frames[event["segment"]].float().amax() > 180
        frame = frames[int(np.argmin(np.abs(times - (event["start"] + event["end"]) / 2)))]
        column = frame[:, frame.shape[1] // 2].astype(int)
        painted = np.flatnonzero(column.max(axis=1) > 180)
        top, bottom = column[painted[len(painted) // 5]], column[painted[-len(painted) // 5]]
        for pixel, name in zip((top, bottom), event["colours"], strict=True):
            assert np.abs(pixel - np.array(COLOURS[name])).max() < 40


def test_deterministic_and_splits_differ(tmp_path):
    common = {"duration": 20.0, "fps": 2, "events": (2, 3), "seed": 1}
    a = make_events_dataset(tmp_path / "a", 2, split="val", **common)
    b = make_events_dataset(tmp_path / "b", 2, split="val", **common)
    c = make_events_dataset(tmp_path / "c", 2, split="train", **common)
    assert a.read_text() == b.read_text() != c.read_text()
    video = json.loads(a.read_text().splitlines()[0])["video"]
    assert (tmp_path / "a" / video).read_bytes() == (tmp_path / "b" / video).read_bytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fps": 0}, "fps must be a finite number > 0, got 0"),
        ({"window": 0}, "window must be a finite number > 0"),
        ({"events": (1, 5)}, "events must be"),
        ({"events": (1, 2), "question_kinds": ["order"]}, "'order' questions need two events"),
        ({"duration": 8.0}, "need a video of at least"),
        ({"question_kinds": ["smell"]}, "question kinds"),
        ({"stripes": 0}, "stripes"),
    ],
)
def test_bad_arguments_fail_before_any_video(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_events_dataset(tmp_path, 1, **kwargs)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs", [{"fps": 0}, {"window": 0}, {"duration": float("nan")}, {"fps": -2}])
def test_needle_dataset_rejects_non_positive_values_up_front(tmp_path, kwargs):
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        make_needle_dataset(tmp_path, 1, **kwargs)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--fps", "0"], "--fps must be a number > 0, got 0.0; e.g. --fps 2"),
        (["--window", "0"], "--window must be a number > 0, got 0; e.g. --window 4"),
        (["--duration", "-1"], "--duration must be a number > 0"),
        (["--task", "events", "--fps", "0"], "--fps must be a number > 0"),
        (["--task", "events", "--events", "3", "9"], "events must be (min, max)"),
    ],
)
def test_cli_names_the_bad_flag_in_one_line(tmp_path, capsys, flags, message):
    assert main(["make-synthetic", str(tmp_path / "out"), "--train", "1", "--val", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_events_task(tmp_path):
    args = ["make-synthetic", str(tmp_path), "--task", "events", "--train", "1", "--val", "1"]
    assert main([*args, "--duration", "20", "--events", "3", "3", "--categories", "count"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "val.jsonl").read_text().splitlines()]
    assert [(r["category"], r["answer"]) for r in rows] == [("count", "3")]
