"""``tempo-kit predict``: one line per row with the answer, reference, allocation and timings;
a rerun resumes; shards write their own files and the summary reads them all."""

from __future__ import annotations

import json

import pytest

from tempo_kit.cli import main
from tempo_kit.evaluation.journal import read_journal


@pytest.fixture(scope="module")
def rows_file(tiny_needle_benchmark, tmp_path_factory):
    """The needle rows (question + letter answer; one as a training row without 'question'), a
    row without a question and one whose video is missing."""
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()][:3]
    rows[1].pop("question")
    rows[1].pop("answer")  # its reference is then the gpt turn
    rows.append({"id": "no-question", "video": rows[0]["video"]})
    rows.append({"id": "no-video", "video": "videos/absent.mp4", "question": "What?"})
    path = tiny_needle_benchmark.parent / "predict_rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(capsys, *argv):
    code = main(["predict", *argv, "--max-new-tokens", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.mark.slow
def test_predict_writes_rows_and_resumes(rows_file, tiny_tempo_dir, tmp_path, capsys):
    out = tmp_path / "pred"
    code, stdout, _ = run(capsys, "--model", str(tiny_tempo_dir), "--annotations", str(rows_file), "--output", str(out))
    assert code == 0
    assert "skipped " in stdout and "no question" in stdout and "video file not found" in stdout
    records = read_journal(out / "predictions.jsonl")
    assert [r["id"] for r in records] == ["test-00000-mc", "test-00001-mc", "test-00002-mc"]
    source = [json.loads(line) for line in rows_file.read_text().splitlines()]
    first, second = records[0], records[1]
    assert first["query"] == source[0]["question"] and first["reference"] == source[0]["answer"]
    human, gpt = (turn["value"] for turn in source[1]["conversations"])
    assert second["query"] == human.removeprefix("<video>\n") and second["reference"] == gpt  # a training row
    assert first["video"] == str(rows_file.parent / source[0]["video"])
    for record in records:
        assert isinstance(record["prediction"], str) and record["timings"]["total"] > 0
        assert sum(s["tokens"] for s in record["segments"]) == record["tokens"]["visual_tokens"] <= 64
        assert record["exact_match"] in (True, False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] == 3 and summary["with_reference"] == 3 and len(summary["skipped_rows"]) == 2

    lines = (out / "predictions.jsonl").read_text().splitlines()
    (out / "predictions.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])  # killed mid-line
    code, stdout, _ = run(capsys, "--model", str(tiny_tempo_dir), "--annotations", str(rows_file), "--output", str(out))
    assert code == 0 and '"resumed": 2' in stdout and '"answered_now": 1' in stdout
    again = read_journal(out / "predictions.jsonl")
    assert [r["id"] for r in again] == [r["id"] for r in records]
    assert again[:2] == records[:2]

    code, _, err = run(capsys, "--model", str(tiny_tempo_dir), "--annotations", str(rows_file), "--output", str(out), "--budget", "32")
    assert code == 2 and "was written with another setting (budget: None → 32)" in err


@pytest.mark.slow
def test_shards_write_their_own_files(rows_file, tiny_tempo_dir, tmp_path):
    from tempo_kit.evaluation.predict import load_predict_rows, predict, summarize_predictions
    from tempo_kit.inference.api import TempoPipeline

    pipe = TempoPipeline.from_pretrained(tiny_tempo_dir)
    rows, skipped = load_predict_rows(rows_file)
    setting = {"max_new_tokens": 2}
    for rank in (0, 1):
        done = predict(lambda row: pipe.answer(row.video, row.query, max_new_tokens=2), rows, tmp_path, setting,
                       shard=(rank, 2), progress=False)  # fmt: skip
        assert done["rows"] == (2 if rank == 0 else 1)
    assert [r["id"] for r in read_journal(tmp_path / "predictions.rank1.jsonl")] == ["test-00001-mc"]
    assert summarize_predictions(tmp_path, skipped)["answered"] == 3


def test_predict_refuses_a_file_without_usable_rows(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    code, _, err = run(capsys, "--model", "unused", "--annotations", str(bad), "--output", str(tmp_path / "o"))
    assert code == 2 and "no usable row (1 skipped, reasons above)" in err
