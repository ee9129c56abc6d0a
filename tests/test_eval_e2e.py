"""`tempo-kit eval` end to end on a tiny model and synthetic needle videos (CPU).

The tiny model answers with option letters (``letter_model`` in conftest), so the accuracy is
neither 0 nor 1 by construction, which makes the recount from the JSONL a real check.
"""

from __future__ import annotations

import json
import sys

import pytest

from tempo_kit.cli import main
from tempo_kit.evaluation.harness import read_results


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    from tempo_kit.data.synthetic import make_needle_dataset

    return make_needle_dataset(
        tmp_path_factory.mktemp("bench"),
        num_videos=6,
        split="test",
        duration=8.0,
        question_types=("mc",),
        seed=1,
    )


def recount(path):
    records = read_results(path)
    return sum(r["prediction"] == r["answer"] for r in records) / len(records), records


def eval_args(model, benchmark, out, *extra):
    return [
        "eval",
        "--model",
        str(model),
        "--annotations",
        str(benchmark),
        "--output",
        str(out),
        "--max-new-tokens",
        "1",
        "--no-progress",
        *extra,
    ]


def test_eval_sweep_end_to_end(letter_model, benchmark, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(eval_args(letter_model, benchmark, out, "--budget", "20,48", "--json")) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert sorted(summaries) == ["b20_ata_head_kmin4_trained-default", "b48_ata_head_kmin4_trained-default"]
    for name, summary in summaries.items():
        accuracy, records = recount(out / f"{name}.jsonl")
        assert summary["count"] == len(records) == 6 and summary["unparsed"] == 0
        assert summary["accuracy"] == accuracy
        assert 0 < accuracy < 1
        budget = records[0]["setting"]["budget"]
        assert all(r["tokens"]["visual_tokens"] <= budget for r in records)
        tpf = [r["tokens"]["visual_tokens"] / r["tokens"]["num_frames"] for r in records]
        assert summary["tokens"]["tokens_per_frame"]["mean"] == pytest.approx(sum(tpf) / len(tpf))
        categories = {r["category"] for r in records}
        assert set(summary["per_category"]) == categories
        per_category = [
            sum(r["correct"] for r in records if r["category"] == c)
            / sum(r["category"] == c for r in records)
            for c in categories
        ]
        assert summary["category_mean"] == pytest.approx(sum(per_category) / len(per_category))
    # item-major sweep: the second budget reuses each video's decoding and compression
    first, second = (read_results(out / f"{name}.jsonl") for name in sorted(summaries))
    assert all(r["info"]["reused"] == [] for r in first)
    assert all(r["info"]["reused"] == ["decode", "compress"] for r in second)
    stored = json.loads((out / "summary.json").read_text())["settings"]
    assert stored.keys() == summaries.keys()


def test_killed_run_resumes_without_recomputing(
    letter_model, benchmark, tmp_path, monkeypatch, capsys, kill_once_written
):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "tempo_kit.cli",
        *eval_args(letter_model, benchmark, out, "--budget", "32"),
    ]
    results = out / "b32_ata_head_kmin4_trained-default.jsonl"
    kill_once_written(command, results, lines=2, seconds=240)
    before = results.read_bytes()
    finished = [r["id"] for r in read_results(results)]
    assert 2 <= len(finished) < 6

    from tempo_kit.inference.api import TempoPipeline

    asked = []
    original = TempoPipeline.answer

    def counting(self, *args, **kwargs):
        asked.append(kwargs["video"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TempoPipeline, "answer", counting)
    assert main(eval_args(letter_model, benchmark, out, "--budget", "32", "--json")) == 0
    summary = json.loads(capsys.readouterr().out)["b32_ata_head_kmin4_trained-default"]
    after = results.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    assert after.startswith(complete)  # finished records untouched
    records = read_results(results)
    assert [r["id"] for r in records][: len(finished)] == finished
    assert len(asked) == 6 - len(finished) and summary["resumed"] == len(finished)
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert summary["count"] == 6 and summary["accuracy"] == recount(results)[0]


def test_a_run_where_every_question_failed_exits_non_zero(letter_model, tmp_path, capsys):
    rows = [
        {"id": f"q{i}", "video": f"gone{i}.mp4", "question": "q", "options": ["a", "b"], "answer": "A"}
        for i in range(2)
    ]
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert main(eval_args(letter_model, path, out, "--missing-video", "count")) == 1
    assert "every question failed" in capsys.readouterr().out
    (results,) = out.glob("*.jsonl")
    records = read_results(results)
    assert len(records) == 2 and all(r["error"] and r["correct"] is False for r in records)


def test_a_rerun_after_summary_json_was_cut_short_warns_and_writes_it_anew(letter_model, benchmark, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(eval_args(letter_model, benchmark, out, "--budget", "20", "--limit", "2")) == 0
    summary = out / "summary.json"
    summary.write_text(summary.read_text()[:40])  # a disk filled by something else, an editor's crash
    capsys.readouterr()
    assert main(eval_args(letter_model, benchmark, out, "--budget", "48", "--limit", "2")) == 0
    err = capsys.readouterr().err
    assert f"warning: {summary} cannot be read (JSONDecodeError: " in err and "Traceback" not in err
    assert list(json.loads(summary.read_text())["settings"]) == ["b48_ata_head_kmin4_trained-default"]
