"""Benchmark files in every row variant → items, lmms-eval's prompts byte for byte, and the
benchmarks' own metrics recounted by hand (rows built from the field lists of compatibility §7)."""

from __future__ import annotations

import json

import pytest

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.benchmarks import convert_annotations
from tempo_kit.evaluation.harness import summarize
from tempo_kit.evaluation.items import load_benchmark, load_items
from tempo_kit.evaluation.presets import PRESETS, get_preset

VIDEOMME = {
    "video_id": "001",
    "duration": "short",
    "domain": "Knowledge",
    "sub_category": "Humanity & History",
    "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
    "videoID": "fFjv93ACGo8",
    "question_id": "001-1",
    "task_type": "Counting Problem",
    "question": "When demonstrating the Germany modern Christmas tree is initially decorated with apples, "
    "candles and berries, which kind of the decoration has the largest number?",
    "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. The three kinds are of the same number."],
    "answer": "C",
}
VIDEOMME_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
    + VIDEOMME["question"]
    + "\nA. Apples.\nB. Candles.\nC. Berries.\nD. The three kinds are of the same number.\n\n"
    "Answer with the option's letter from the given choices directly."
)

LVBENCH_QUESTION = "What is the score at the end of the first half?\n(A) 1-0\n(B) 0-0\n(C) 2-1\n(D) 1-1"
LVBENCH_QA = {
    "uid": "2717",
    "question": LVBENCH_QUESTION,
    "answer": "B",
    "question_type": ["key information retrieval", "temporal grounding"],
    "time_reference": "45:10-45:20",
}
LVBENCH = {"key": "hbBwyyTQXf0", "type": "sport", "video_info": {"duration_minutes": 70.2}, "qa": [LVBENCH_QA]}
LVBENCH_FLAT = {**LVBENCH_QA, "key": "hbBwyyTQXf0", "video_path": "videos/00000/7.mp4", "duration": 4212.0}

MLVU = {
    "video": "movie101_66.mp4",
    "duration": 246,
    "question": "What color is the main male character in the video?",
    "candidates": ["Yellow", "Red", "Green", "Blue"],
    "answer": "Yellow",
    "question_type": "plotQA",
}
MLVU_DEV = {
    "video_name": "needle_32.mp4",
    "duration": 467.0,
    "question": "What does the hand coming out of the computer do?\n(A) Delivers a product\n(B) Shakes the "
    "woman's hand\n(C) Takes the woman's credit card\n(D) Points at the screen\n",
    "candidates": ["Delivers a product", "Shakes the woman's hand", "Takes the woman's credit card", "Points at the screen"],
    "answer": "B",
    "task_type": "needle",
    "question_id": "needle_0",
}

LONGVIDEOBENCH = {
    "video_id": "86CxyhFV9MI",
    "question": "In the video, which subtitles appear at the same time as the man with black hair?",
    "candidates": ["red", "green", "blue", "white", "black"],
    "correct_choice": 3,
    "question_category": "T3E",
    "topic_category": "NP-News-Programs",
    "duration_group": 600,
    "duration": 493.0,
    "id": "86CxyhFV9MI_0",
    "video_path": "86CxyhFV9MI.mp4",
}


def lvb_parquet_row(**change):
    row = {k: v for k, v in LONGVIDEOBENCH.items() if k != "candidates"}
    row.update({f"option{i}": o for i, o in enumerate(["red", "green", "blue", "N/A", "N/A"])})
    row["correct_choice"] = 2
    return {**row, **change}


def write(path, rows, jsonl=False):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows))
    return path


def prompt(item, fmt):
    return PRESETS[fmt].build(item)


def test_videomme_hf_rows_and_the_official_layout(tmp_path):
    (item,) = load_items(write(tmp_path / "hf.jsonl", [VIDEOMME], jsonl=True), tmp_path / "data", fmt="videomme")
    assert item.id == "001-1" and item.video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    assert item.options[0] == "Apples." and item.answer == "C"
    assert (item.category, item.duration) == ("Counting Problem", "short")
    assert prompt(item, "videomme") == VIDEOMME_PROMPT and PRESETS["videomme"].max_new_tokens == 16
    assert item.extra["source"]["domain"] == "Knowledge"
    qa = {k: VIDEOMME[k] for k in ("question_id", "task_type", "question", "options", "answer")}
    nested = {k: v for k, v in VIDEOMME.items() if k not in qa and k != "videoID"}
    (official,) = load_items(write(tmp_path / "videomme.json", [{**nested, "questions": [qa]}]), fmt="videomme")
    assert official.video.endswith("fFjv93ACGo8.mp4")  # from the url when videoID is absent
    assert (official.answer, official.duration, prompt(official, "videomme")) == ("C", "short", VIDEOMME_PROMPT)


def test_lvbench_meta_and_flat_rows_keep_every_type(tmp_path):
    expected = LVBENCH_QUESTION + "\nAnswer the question with the option letter"
    (meta,) = load_items(write(tmp_path / "meta.jsonl", [LVBENCH], jsonl=True), fmt="lvbench")
    (flat,) = load_items(write(tmp_path / "flat.jsonl", [LVBENCH_FLAT], jsonl=True), fmt="lvbench")
    for item in (meta, flat):
        assert item.question == "What is the score at the end of the first half?"
        assert item.options == ["1-0", "0-0", "2-1", "1-1"] and item.answer == "B"
        assert item.extra["question_types"] == ["key information retrieval", "temporal grounding"]
        assert prompt(item, "lvbench") == expected
        assert item.extra["source"]["time_reference"] == "45:10-45:20"
    assert meta.duration == pytest.approx(70.2 * 60) and meta.video.endswith("hbBwyyTQXf0.mp4")
    assert flat.duration == 4212.0 and flat.video.endswith("videos/00000/7.mp4")


def test_mlvu_original_files_skip_bad_rows_and_dev_rows_load(tmp_path):
    rows = [
        MLVU,
        {**MLVU, "answer": "Blue"},
        {**MLVU, "question_type": "findNeedle", "answer": "Purple"},  # answer not among candidates
        {**MLVU, "question_type": "topic_reasoning", "question": ""},  # empty row
        {**MLVU, "candidates": ["Red", "Blue", "Red", "Green"], "answer": "Red"},  # duplicated candidate
    ]
    path = write(tmp_path / "1_plotQA.json", rows)
    benchmark = load_benchmark(path, fmt="mlvu")
    assert [i.answer for i in benchmark.items] == ["A", "D", "C"]  # the official scorer's last match
    assert [i.id for i in benchmark.items] == ["plotQA_1", "plotQA_2", "plotQA_3"]
    assert benchmark.items[0].video.endswith("1_plotQA/movie101_66.mp4")
    assert [str(s) for s in benchmark.skipped] == [
        f"{path} row 3: answer 'Purple' is not one of the candidates ['Yellow', 'Red', 'Green', 'Blue']",
        f"{path} row 4: missing field(s) question (has answer, candidates, duration, question, question_type, video)",
    ]
    assert prompt(benchmark.items[0], "mlvu") == (
        f"{MLVU['question']}\n(A) Yellow\n(B) Red\n(C) Green\n(D) Blue\n\nOnly give the best option.\nBest option: ("
    )
    (dev,) = load_items(write(tmp_path / "dev.jsonl", [MLVU_DEV], jsonl=True), fmt="mlvu")
    assert (dev.id, dev.answer, dev.category, dev.duration) == ("needle_0", "B", "needle", 467.0)
    assert dev.options[1:] == MLVU_DEV["candidates"][1:] and dev.video.endswith("needle_32.mp4")
    assert prompt(dev, "mlvu") == MLVU_DEV["question"] + "\nOnly give the best option.\nBest option: ("


def test_longvideobench_json_and_parquet(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (item,) = load_items(write(tmp_path / "lvb_val.json", [LONGVIDEOBENCH]), fmt="longvideobench")
    assert item.answer == "D" and item.num_options == 5 and item.category == "T3E" and item.duration == 493.0
    path = tmp_path / "validation.parquet"
    pq.write_table(pyarrow.Table.from_pylist([lvb_parquet_row(), lvb_parquet_row(id="x", correct_choice=4)]), path)
    benchmark = load_benchmark(path, fmt="longvideobench")
    (parquet,) = benchmark.items
    assert parquet.options == ["red", "green", "blue"] and parquet.answer == "C"
    assert parquet.extra["duration_group"] == 600 and parquet.extra["source"]["option3"] == "N/A"
    assert [str(s) for s in benchmark.skipped] == [f"{path} row 2: answer index 4 is outside the 3 options"]
    assert prompt(parquet, "longvideobench") == (
        f"{LONGVIDEOBENCH['question']}\nA. red\nB. green\nC. blue\n"
        "Answer with the option's letter from the given choices directly.\n"
    )
    assert PRESETS["longvideobench"].max_new_tokens == 32


def test_prompts_equal_lmms_evals_own_doc_to_text(tmp_path):
    """Where lmms-eval's task code imports here (Video-MME's needs OpenCV), compare with it directly."""
    pytest.importorskip("lmms_eval")
    from lmms_eval.tasks.longvideobench.utils import longvideobench_doc_to_text
    from lmms_eval.tasks.lvbench.utils import lvbench_doc_to_text
    from lmms_eval.tasks.mlvu.utils import mlvu_doc_to_text

    (lv,) = load_items(write(tmp_path / "lv.jsonl", [LVBENCH_FLAT], jsonl=True), fmt="lvbench")
    kwargs = {"pre_prompt": "", "post_prompt": "\nAnswer the question with the option letter"}
    assert prompt(lv, "lvbench") == lvbench_doc_to_text(LVBENCH_FLAT, kwargs)
    (ml,) = load_items(write(tmp_path / "ml.jsonl", [MLVU_DEV], jsonl=True), fmt="mlvu")
    kwargs = {"pre_prompt": "", "post_prompt": "\nOnly give the best option.\nBest option: ("}
    assert prompt(ml, "mlvu") == mlvu_doc_to_text(MLVU_DEV, kwargs)
    row = lvb_parquet_row()
    (lvb,) = load_items(write(tmp_path / "lvb.jsonl", [row], jsonl=True), fmt="longvideobench")
    kwargs = {"pre_prompt": "", "post_prompt": "Answer with the option's letter from the given choices directly.\n"}
    assert prompt(lvb, "longvideobench") == longvideobench_doc_to_text(row, kwargs)


def test_conversion_is_atomic_and_keeps_fields(tmp_path):
    src = write(tmp_path / "1_plotQA.json", [MLVU, {**MLVU, "answer": "Purple"}])
    out, skipped = convert_annotations("mlvu", [src], tmp_path / "mlvu.jsonl")
    assert len(skipped) == 1 and "row 2" in str(skipped[0])
    (item,) = load_items(out, media_root=tmp_path)
    assert item.answer == "A" and item.extra["source"]["question_type"] == "plotQA"
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="no usable mlvu question"):
        convert_annotations("mlvu", [write(tmp_path / "bad.json", [{**MLVU, "answer": "x"}])], out)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "1_plotQA.json", "bad.json", "mlvu.jsonl"
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="--prompt 'mlvuu': unknown preset \\(did you mean 'mlvu'\\?\\)"):
        get_preset("mlvuu")


def record(i, answer, prediction, category=None, duration=None, **fields):
    return {
        "id": str(i), "answer": answer, "prediction": prediction, "category": category,
        "duration": duration, "options": ["a", "b", "c", "d"], "fields": fields,
    }  # fmt: skip


def test_mlvu_m_avg_divides_by_seven_and_names_missing_tasks():
    records = [
        record(1, "A", "A", "plotQA"), record(2, "A", "B", "plotQA"),  # 1/2
        record(3, "B", "B", "needle"),  # 1/1
        record(4, "C", None, "count"), record(5, "C", "C", "count"), record(6, "C", "C", "count"),  # 2/3
    ]  # fmt: skip
    with pytest.warns(UserWarning, match="counted 0\\): anomaly_reco, ego, order, topic_reasoning"):
        scores = summarize(records, fmt="mlvu")["benchmark"]
    assert scores["m_avg"] == pytest.approx((0.5 + 1 + 2 / 3) / 7)
    assert scores["per_task"]["count"] == {"accuracy": pytest.approx(2 / 3), "count": 3}
    assert scores["missing_tasks"] == ["anomaly_reco", "ego", "order", "topic_reasoning"]


def test_lvbench_counts_a_question_under_every_type():
    kir, tg, er = "key information retrieval", "temporal grounding", "entity recognition"
    records = [
        record(1, "A", "A", kir, question_types=[kir, tg]),
        record(2, "A", "B", tg, question_types=[tg]),
        record(3, "A", "A", er, question_types=[er, kir]),
    ]
    scores = summarize(records, fmt="lvbench")["benchmark"]
    assert scores["per_type"] == {
        er: {"accuracy": 1.0, "count": 1},
        kir: {"accuracy": 1.0, "count": 2},
        tg: {"accuracy": 0.5, "count": 2},
    }
    assert scores["overall"] == {"accuracy": pytest.approx(2 / 3), "count": 3}


def test_videomme_per_duration_and_longvideobench_groups():
    records = [record(1, "A", "A", duration="short"), record(2, "A", "B", duration="long"), record(3, "B", "B", duration="long")]
    scores = summarize(records, fmt="videomme")["benchmark"]
    assert scores["per_duration"] == {"long": {"accuracy": 0.5, "count": 2}, "short": {"accuracy": 1.0, "count": 1}}
    records = [
        record(1, "A", "A", "T3E", duration_group=600),
        record(2, "B", None, "T3E", duration_group=600),  # unparsed: wrong here, 1/4 as a random letter
        record(3, "C", "D", "S2A", duration_group=15.0),
        record(4, "D", "D", "S2A", duration_group=3600),
    ]
    scores = summarize(records, fmt="longvideobench")["benchmark"]
    assert scores["per_duration_group"] == {
        "15": {"accuracy": 0.0, "count": 1},
        "3600": {"accuracy": 1.0, "count": 1},
        "600": {"accuracy": 0.5, "count": 2},
    }
    assert scores["overall"]["accuracy"] == 0.5 and scores["unparsed"] == 1
    assert scores["overall_if_unparsed_guessed"] == pytest.approx((2 + 1 / 4) / 4)


def test_mlvu_folder_of_task_files_is_one_benchmark(tmp_path, capsys):
    from tempo_kit.cli import main

    folder = tmp_path / "json"
    folder.mkdir()
    write(folder / "1_plotQA.json", [MLVU])
    write(folder / "2_needle.json", [{**MLVU, "question_type": "findNeedle"}, {**MLVU, "answer": "Purple"}])
    (folder / "README.txt").write_text("not annotations")
    benchmark = load_benchmark(folder, fmt="mlvu")
    assert [i.id for i in benchmark.items] == ["plotQA_1", "needle_1"]
    assert [s.where for s in benchmark.skipped] == [f"{folder / '2_needle.json'} row 2"]
    assert benchmark.items[0].video == str(folder / "1_plotQA" / "movie101_66.mp4")
    assert main(["eval", "--format", "mlvu", "--annotations", str(folder), "--print-prompts"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    with pytest.raises(ConfigError, match=f"annotation folder {tmp_path / 'empty'} holds no .json, .jsonl, .parquet"):
        (tmp_path / "empty").mkdir()
        load_benchmark(tmp_path / "empty", fmt="mlvu")
