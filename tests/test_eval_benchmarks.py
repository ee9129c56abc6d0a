"""Benchmark annotation formats → harness fields (rows shaped like the public files)."""

from __future__ import annotations

import json

import pytest

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.benchmarks import convert_annotations, split_inline_options
from tempo_kit.evaluation.items import load_items

VIDEOMME = {
    "video_id": "001",
    "duration": "short",
    "domain": "Knowledge",
    "sub_category": "Humanity & History",
    "videoID": "fFjv93ACGo8",
    "question_id": "001-1",
    "task_type": "Counting Problem",
    "question": "When demonstrating the Germany modern Christmas tree is initially decorated with apples, "
    "candles and berries, which kind of the decoration has the largest number?",
    "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. The three kinds are of the same number."],
    "answer": "C",
}

LVBENCH = {
    "key": "hbBwyyTQXf0",
    "type": "sport",
    "video_info": {"duration_minutes": 70.2, "fps": 30.0},
    "qa": [
        {
            "uid": "2717",
            "question": "What is the score at the end of the first half?\n(A) 1-0\n(B) 0-0\n(C) 2-1\n(D) 1-1",
            "answer": "B",
            "question_type": ["key information retrieval", "temporal grounding"],
            "time_reference": "45:10-45:20",
        }
    ],
}

MLVU = {
    "video": "movie101_66.mp4",
    "duration": 246,
    "question": "What color is the main male character in the video?",
    "candidates": ["Yellow", "Red", "Green", "Blue"],
    "answer": "Yellow",
    "question_type": "plotQA",
}

LONGVIDEOBENCH = {
    "video_id": "86CxyhFV9MI",
    "question": "In the video, which subtitles appear at the same time as the man with black hair?",
    "candidates": ["A", "B", "C", "D", "E"],
    "correct_choice": 3,
    "question_category": "T3E",
    "topic_category": "NP-News-Programs",
    "duration_group": 600,
    "duration": 493.0,
    "id": "86CxyhFV9MI_0",
    "video_path": "86CxyhFV9MI.mp4",
}


def test_videomme(tmp_path):
    src = tmp_path / "videomme.jsonl"
    src.write_text(json.dumps(VIDEOMME) + "\n")
    (item,) = load_items(src, media_root=tmp_path / "data", fmt="videomme")
    assert item.id == "001-1" and item.video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    assert item.options[0] == "Apples." and item.answer == "C"
    assert item.category == "Counting Problem" and item.duration == "short"


def test_lvbench_nested_questions_and_inline_options(tmp_path):
    src = tmp_path / "video_info.meta.jsonl"
    src.write_text(json.dumps(LVBENCH) + "\n")
    (item,) = load_items(src, fmt="lvbench")
    assert item.question == "What is the score at the end of the first half?"
    assert item.options == ["1-0", "0-0", "2-1", "1-1"] and item.answer == "B"
    assert item.category == "key information retrieval"
    assert item.extra["question_types"] == ["key information retrieval", "temporal grounding"]
    assert item.duration == pytest.approx(70.2 * 60)
    with pytest.raises(ConfigError, match="found 0"):
        split_inline_options("no options here", "x")


def test_mlvu_answer_text_becomes_letter(tmp_path):
    src = tmp_path / "1_plotQA.json"
    src.write_text(json.dumps([MLVU, {**MLVU, "answer": "Blue"}]))
    items = load_items(src, fmt="mlvu")
    assert [i.answer for i in items] == ["A", "D"]
    assert [i.id for i in items] == ["plotQA_1", "plotQA_2"]
    assert items[0].video.endswith("1_plotQA/movie101_66.mp4")
    src.write_text(json.dumps([{**MLVU, "answer": "Purple"}]))
    with pytest.raises(ConfigError, match="'Purple' is not one of the candidates"):
        load_items(src, fmt="mlvu")


def test_longvideobench_and_conversion_file(tmp_path):
    src = tmp_path / "lvb_val.json"
    src.write_text(json.dumps([LONGVIDEOBENCH]))
    out = convert_annotations("longvideobench", [src], tmp_path / "lvb.jsonl")
    (item,) = load_items(out)
    assert item.answer == "D" and item.num_options == 5 and item.category == "T3E" and item.duration == 493.0
    with pytest.raises(ConfigError, match="needs field\\(s\\) question_id, videoID"):
        load_items(src, fmt="videomme")
