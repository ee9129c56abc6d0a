"""Synthetic needle videos: deterministic, real H.264, the needle where the annotation says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tempo_kit.cli import main
from tempo_kit.data.synthetic import COLOURS, OPTION_LETTERS, make_needle_dataset
from tempo_kit.video import load_video, make_segments


@pytest.fixture(scope="module")
def needle(tmp_path_factory):
    out = tmp_path_factory.mktemp("needle")
    return out, make_needle_dataset(out, 3, duration=20.0, fps=8, seed=3)


def read_rows(path):
    return [json.loads(line) for line in open(path)]


def test_rows_are_consistent(needle):
    out, path = needle
    rows = read_rows(path)
    assert len(rows) == 6  # one mc + one open per video
    assert {r["category"] for r in rows} == {"colour", "shape", "digit"}
    for row in rows:
        assert (out / row["video"]).is_file()
        human, gpt = row["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and human["value"].startswith("<video>\n")
        assert 2.0 <= row["needle_start"] < row["needle_end"] <= 18.0
        assert row["needle_time"] == pytest.approx((row["needle_start"] + row["needle_end"]) / 2)
        if row["question_type"] == "mc":
            letter = row["answer"]
            assert (
                gpt["value"] == letter and row["options"][OPTION_LETTERS.index(letter)] == row["answer_text"]
            )
            assert len(set(row["options"])) == 4
            for i, option in enumerate(row["options"]):
                assert f"{OPTION_LETTERS[i]}. {option}" in human["value"]
        else:
            assert gpt["value"] == row["answer"]


def test_needle_is_in_the_recorded_segment(needle):
    out, path = needle
    for row in read_rows(path):
        if row["question_type"] != "mc":
            continue
        clip = load_video(out / row["video"])
        assert len(clip) == 40  # 20 s at 2 FPS
        seg = make_segments(clip, row["window"])
        # needle frames: far from the background's dim colours, at the needle's times
        bright = clip.frames.float().amax(dim=(1, 2, 3)) > 180
        shown = (clip.timestamps >= row["needle_start"]) & (clip.timestamps < row["needle_end"])
        assert bright.tolist() == shown.tolist()
        centre = seg.frames[row["needle_segment"]].float().amax(dim=(1, 2, 3))
        assert (centre > 180).any()
        if row["category"] == "colour":
            frame = clip.frames[int(np.argmin(np.abs(clip.timestamps.numpy() - row["needle_time"])))]
            middle = frame[frame.shape[0] // 2, frame.shape[1] // 2].int().numpy()
            assert np.abs(middle - np.array(COLOURS[row["answer_text"]])).max() < 40


def test_deterministic_from_seed(tmp_path):
    a = make_needle_dataset(tmp_path / "a", 2, duration=10.0, seed=7, split="val")
    b = make_needle_dataset(tmp_path / "b", 2, duration=10.0, seed=7, split="val")
    c = make_needle_dataset(tmp_path / "c", 2, duration=10.0, seed=7, split="train")
    assert read_rows(a) == read_rows(b)
    for row in read_rows(a):
        assert (tmp_path / "a" / row["video"]).read_bytes() == (tmp_path / "b" / row["video"]).read_bytes()
    assert [r["needle_time"] for r in read_rows(a)] != [r["needle_time"] for r in read_rows(c)]


def test_parameters_and_errors(tmp_path):
    path = make_needle_dataset(
        tmp_path,
        1,
        duration=8.0,
        fps=10,
        size=(64, 80),
        categories=["digit"],
        question_types=["mc"],
        window=8,
    )
    (row,) = read_rows(path)
    assert row["category"] == "digit" and row["window"] == 8 and row["duration"] == 8.0
    assert tuple(load_video(tmp_path / row["video"], preprocessing="qwen3_vl").frames.shape[1:3]) == (64, 80)
    with pytest.raises(ValueError, match="categories"):
        make_needle_dataset(tmp_path, 1, categories=["smell"])
    with pytest.raises(ValueError, match="needle_duration"):
        make_needle_dataset(tmp_path, 1, duration=3.0)


def test_cli_verb(tmp_path, capsys):
    assert main(["make-synthetic", str(tmp_path), "--train", "1", "--val", "1", "--duration", "6"]) == 0
    assert (tmp_path / "train.jsonl").is_file() and (tmp_path / "val.jsonl").is_file()
    assert main(["make-synthetic", str(tmp_path), "--height", "15"]) == 2
    assert "--height" in capsys.readouterr().err
