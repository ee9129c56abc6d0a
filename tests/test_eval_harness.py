"""The resumable harness against a scripted answer function (no model needed)."""

from __future__ import annotations

import json

import pytest

from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.evaluation.harness import Reply, read_results, run_benchmark, summarize
from tempo_kit.evaluation.items import format_prompt, load_benchmark, load_items


def write_annotations(path, n=10):
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"q{i}",
                "video": f"videos/v{i}.mp4",
                "question": f"What shape appears at second {i}?",
                "options": ["A. circle", "B. square", "C. star", "D. triangle"],
                "answer": "ABCD"[i % 4],
                "category": "shape" if i % 2 else "colour",
                "duration": 30 + 200 * i,
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


class Scripted:
    """Replies in varied styles; right on even items, wrong on odd ones; may crash at one item."""

    def __init__(self, crash_at=None):
        self.calls = []
        self.crash_at = crash_at

    def __call__(self, item, prompt):
        if item.id == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(item.id)
        index = int(item.id[1:])
        letter = item.answer if index % 2 == 0 else "ABCD"[("ABCD".index(item.answer) + 1) % 4]
        styles = ["({})", "The answer is {}.", "{}. something", "Answer: {}"]
        return Reply(
            text=styles[index % 4].format(letter),
            tokens={"visual_tokens": 100 + index, "num_frames": 50, "tokens_per_frame": (100 + index) / 50},
            timings={"generate": 0.01},
        )


def recount(records):
    latest = {r["id"]: r for r in records}
    return sum(r["prediction"] == r["answer"] for r in latest.values()) / len(latest)


def test_load_items_strips_letters_and_resolves_paths(tmp_path):
    items = load_items(write_annotations(tmp_path / "ann.jsonl", 3))
    assert items[0].options == ["circle", "square", "star", "triangle"]
    assert items[1].video == str(tmp_path / "videos" / "v1.mp4")
    prompt = format_prompt(items[0])
    assert "\nA. circle\nB. square\nC. star\nD. triangle\n" in prompt


def test_bad_rows_are_counted_skips_naming_file_and_row(tmp_path):
    path = tmp_path / "ann.jsonl"
    good = {"id": "x", "video": "v.mp4", "question": "q", "options": ["a", "b"], "answer": "A"}
    rows = [
        good,
        {**good, "id": "y", "answer": "C"},
        {**good, "id": "z", "question": ""},
        good,
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    benchmark = load_benchmark(path)
    assert [item.id for item in benchmark.items] == ["x"]
    assert [str(s) for s in benchmark.skipped] == [
        f"{path} row 2 (id 'y'): answer 'C' is not one of the option letters A, B; convert the benchmark's "
        "answer to a letter (see tempo_kit.evaluation.benchmarks)",
        f"{path} row 3 (id 'z'): missing field(s) question",
        f"{path} row 4: id 'x' already used by {path} row 1; ids must be unique",
        f"{path} row 5: not valid JSON (Expecting property name enclosed in double quotes)",
    ]
    path.write_text(json.dumps(rows[1]) + "\n")
    with pytest.raises(ConfigError, match=r"holds no usable question \(.*row 1 \(id 'y'\): answer 'C'"):
        load_benchmark(path)


def test_run_resume_after_crash_recomputes_nothing(tmp_path):
    items = load_items(write_annotations(tmp_path / "ann.jsonl", 10))
    out = tmp_path / "results" / "run.jsonl"
    first = Scripted(crash_at="q7")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(items, first, out, setting={"budget": 64}, progress=False)
    assert first.calls == [f"q{i}" for i in range(7)]
    assert len(read_results(out)) == 7

    # a half-written line from a kill during the write is dropped, not a crash
    with out.open("a") as handle:
        handle.write('{"id": "q7", "respo')
    second = Scripted()
    summary = run_benchmark(items, second, out, setting={"budget": 64}, progress=False)
    assert second.calls == ["q7", "q8", "q9"]
    records = read_results(out)
    assert [r["id"] for r in records] == [f"q{i}" for i in range(10)]
    assert summary["resumed"] == 7 and summary["count"] == 10
    assert summary["accuracy"] == recount(records) == 0.5
    assert summary["unparsed"] == 0

    # a third run has nothing to do
    third = Scripted()
    again = run_benchmark(items, third, out, setting={"budget": 64}, progress=False)
    assert third.calls == [] and again["accuracy"] == summary["accuracy"]


def test_changed_setting_refuses_to_mix(tmp_path):
    items = load_items(write_annotations(tmp_path / "ann.jsonl", 2))
    out = tmp_path / "run.jsonl"
    run_benchmark(items, Scripted(), out, setting={"budget": 64}, progress=False)
    with pytest.raises(ConfigError, match="budget: 64 → 128"):
        run_benchmark(items, Scripted(), out, setting={"budget": 128}, progress=False)
    summary = run_benchmark(items, Scripted(), out, setting={"budget": 128}, overwrite=True, progress=False)
    assert summary["count"] == 2 and summary["resumed"] == 0


def test_category_mean_differs_from_sample_mean(tmp_path):
    records = [
        {"id": "1", "answer": "A", "prediction": "A", "category": "x"},
        {"id": "2", "answer": "A", "prediction": "A", "category": "x"},
        {"id": "3", "answer": "A", "prediction": "A", "category": "x"},
        {"id": "4", "answer": "B", "prediction": None, "category": "y"},
    ]
    summary = summarize(records)
    assert summary["accuracy"] == 0.75
    assert summary["category_mean"] == 0.5
    assert summary["per_category"] == {"x": {"accuracy": 1.0, "count": 3}, "y": {"accuracy": 0.0, "count": 1}}
    assert summary["unparsed"] == 1


def test_duration_buckets_numeric_and_labels():
    records = [
        {"id": "1", "answer": "A", "prediction": "A", "duration": 10},
        {"id": "2", "answer": "A", "prediction": "B", "duration": 4000},
        {"id": "3", "answer": "A", "prediction": "A", "duration": "long"},
    ]
    buckets = summarize(records)["per_duration"]
    assert buckets == {
        "0-15s": {"accuracy": 1.0, "count": 1},
        ">60min": {"accuracy": 0.0, "count": 1},
        "long": {"accuracy": 1.0, "count": 1},
    }


def test_failed_item_is_recorded_wrong_then_retried(tmp_path):
    items = load_items(write_annotations(tmp_path / "ann.jsonl", 3))
    out = tmp_path / "run.jsonl"

    def broken(item, prompt):
        if item.id == "q1":
            raise MediaError(f"cannot read video {item.video}")
        return Reply(text=item.answer)

    summary = run_benchmark(items, broken, out, progress=False)
    assert summary["errors"] == 1 and summary["accuracy"] == pytest.approx(2 / 3)
    assert "cannot read video" in read_results(out)[1]["error"]
    calls = []

    def fixed(item, prompt):
        calls.append(item.id)
        return Reply(text=item.answer)

    summary = run_benchmark(items, fixed, out, progress=False)
    assert calls == ["q1"] and summary["errors"] == 0 and summary["accuracy"] == 1.0
    with pytest.raises(MediaError):
        run_benchmark(items, broken, tmp_path / "other.jsonl", on_error="raise", progress=False)


def test_sweep_is_item_major_and_resumes_each_run(tmp_path):
    from tempo_kit.evaluation.harness import Run, run_sweep

    items = load_items(write_annotations(tmp_path / "ann.jsonl", 4))
    calls = []

    def fn(tag):
        def answer(item, prompt):
            calls.append((item.id, tag))
            return Reply(text=item.answer if tag == "right" else "Z")

        return answer

    run_benchmark(items[:2], fn("right"), tmp_path / "right.jsonl", setting={"k": "right"}, progress=False)
    calls.clear()
    runs = [
        Run(fn("right"), tmp_path / "right.jsonl", {"k": "right"}),
        Run(fn("wrong"), tmp_path / "wrong.jsonl", {"k": "wrong"}),
    ]
    right, wrong = run_sweep(items, runs, progress=False)
    # the first run had q0, q1 already; every item is visited once, all its pending runs together
    assert calls == [
        ("q0", "wrong"),
        ("q1", "wrong"),
        ("q2", "right"),
        ("q2", "wrong"),
        ("q3", "right"),
        ("q3", "wrong"),
    ]
    assert (right["accuracy"], right["resumed"]) == (1.0, 2) and (wrong["accuracy"], wrong["unparsed"]) == (
        0.0,
        4,
    )
    with pytest.raises(ConfigError, match="same results file"):
        run_sweep(items, [runs[0], Run(fn("x"), tmp_path / "right.jsonl", {"k": "right"})], progress=False)


def test_corrected_answer_is_rescored_and_changed_options_are_asked_again(tmp_path):
    path = write_annotations(tmp_path / "ann.jsonl", 4)
    out = tmp_path / "run.jsonl"
    first = run_benchmark(load_items(path), Scripted(), out, progress=False)
    assert first["accuracy"] == 0.5  # q0, q2 right; q1, q3 wrong
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    previous = read_results(out)[1]
    rows[1]["answer"] = previous["prediction"]  # the annotation's answer for q1 is corrected
    rows[3]["options"] = ["A. disc", "B. box", "C. star", "D. wedge"]  # q3 now asks something else
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = Scripted()
    summary = run_benchmark(load_items(path), again, out, progress=False)
    assert again.calls == ["q3"]  # q1 is rescored from its stored reply, not asked again
    latest = {r["id"]: r for r in read_results(out)}
    assert latest["q1"]["correct"] and latest["q1"]["response"] == previous["response"]
    assert latest["q1"]["info"]["rescored_from_answer"] == "B"
    assert summary["accuracy"] == 0.75 and summary["count"] == 4


def test_a_second_writer_of_the_same_results_file_is_refused(tmp_path):
    import subprocess
    import sys

    items = load_items(write_annotations(tmp_path / "ann.jsonl", 2))
    out = tmp_path / "run.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tempo_kit.evaluation.journal import open_journal\n"
         f"h = open_journal({str(out)!r}); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match="is being written by another run"):
            run_benchmark(items, Scripted(), out, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert run_benchmark(items, Scripted(), out, progress=False)["count"] == 2  # free once it ended


def test_shards_answer_disjoint_items_and_merge_into_one_summary(tmp_path):
    from tempo_kit.evaluation.harness import Run, run_sweep, summarize_runs

    items = load_items(write_annotations(tmp_path / "ann.jsonl", 5))
    out = tmp_path / "run.jsonl"
    asked = {}
    for rank in (0, 1):
        scripted = Scripted()
        run_sweep(items, [Run(scripted, out, {"b": 1})], progress=False, shard=(rank, 2))
        asked[rank] = scripted.calls
    assert asked == {0: ["q0", "q2", "q4"], 1: ["q1", "q3"]}
    assert sorted(p.name for p in tmp_path.glob("run*.jsonl")) == ["run.rank0.jsonl", "run.rank1.jsonl"]
    (merged,) = summarize_runs(items, [Run(Scripted(), out, {"b": 1})])
    assert merged["count"] == 5 and merged["accuracy"] == pytest.approx(3 / 5) and merged["missing"] == 0
    single = Scripted()  # a rerun on one process finds every answer in the ranks' files
    (summary,) = run_sweep(items, [Run(single, out, {"b": 1})], progress=False)
    assert single.calls == [] and summary["resumed"] == 5 and summary["accuracy"] == merged["accuracy"]
