"""Relevant spans: the overlap rule, checks on bad spans, annotation rows, dataset labels, converters."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.data.annotations import AnnotationError, load_annotations, parse_row
from tempo_kit.data.grounding import convert_grounding
from tempo_kit.data.skips import SkipLog
from tempo_kit.data.spans import SpanError, parse_spans, segment_bounds, segment_labels
from tempo_kit.types import Segments
from tempo_kit.video.reading import Sampling

CONV = [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": "There."}]


def segments_at(starts: list[list[float]]) -> Segments:
    times = torch.tensor(starts, dtype=torch.float64)
    s, f = times.shape
    return Segments(torch.zeros(s, f, 2, 2, 3, dtype=torch.uint8), times, times.mean(1))


def test_bounds_run_from_first_frame_to_next_segment_and_the_last_to_the_duration():
    segments = segments_at([[0.0, 0.5, 1.0, 1.5], [2.0, 2.5, 3.0, 3.5], [4.0, 4.5, 4.5, 4.5]])
    bounds = segment_bounds(segments, duration=4.8)
    assert bounds.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 4.8]]


def test_a_segment_is_relevant_when_its_interval_overlaps_a_span():
    bounds = torch.tensor([[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0]], dtype=torch.float64)
    # [2.0, 4.0] touches segment 0's end and segment 2's start: no overlap, only segment 1
    assert segment_labels(bounds, [(2.0, 4.0)]).tolist() == [0, 1, 0, 0]
    assert segment_labels(bounds, [(1.9, 4.1)]).tolist() == [1, 1, 1, 0]
    assert segment_labels(bounds, [(0.5, 0.6), (7.0, 9.0)]).tolist() == [1, 0, 0, 1]
    # an instant marks the segment holding it; an instant at the very end marks the last one
    assert segment_labels(bounds, [(4.0, 4.0)]).tolist() == [0, 0, 1, 0]
    assert segment_labels(bounds, [(8.0, 8.0)]).tolist() == [0, 0, 0, 1]


def test_the_documented_example_labels_segments_7_to_9():
    # 64 s at 2 fps in 4-frame segments: segment i covers [2i, 2i + 2)
    segments = segments_at([[2.0 * i + 0.5 * j for j in range(4)] for i in range(32)])
    labels = segment_labels(segment_bounds(segments, 64.0), [(14.9, 18.9)])
    assert labels.nonzero().flatten().tolist() == [7, 8, 9]


@given(
    st.lists(st.tuples(st.floats(0, 60), st.floats(0, 10)), min_size=1, max_size=4),
    st.integers(1, 20),
)
def test_labels_match_a_brute_force_check_of_every_segment(spans, count):
    edges = torch.linspace(0, 60, count + 1, dtype=torch.float64)
    bounds = torch.stack([edges[:-1], edges[1:]], 1)
    spans = [(a, a + d) for a, d in spans]
    labels = segment_labels(bounds, spans)
    for i, (lo, hi) in enumerate(bounds.tolist()):
        expected = any((a < hi and b > lo) if b > a else (lo <= a < hi or (i == count - 1 and a >= hi)) for a, b in spans)
        assert bool(labels[i]) == expected


@pytest.mark.parametrize(
    "value, duration, message",
    [
        ([[5.0, 3.0]], None, "ends before it starts"),
        ([[-1.0, 3.0]], None, "starts before 0"),
        ([[70.0, 80.0]], 64.0, "starts at or after the end of the video (64.00 s)"),
        ([[1.0]], None, "must be [start_s, end_s]"),
        ([["a", 2]], None, "must be [start_s, end_s]"),
        ("0-3", None, "must be a list"),
    ],
)
def test_bad_spans_are_refused_naming_the_row(value, duration, message):
    with pytest.raises(SpanError, match="rows.jsonl:3") as error:
        parse_spans(value, "rows.jsonl:3", duration)
    assert message in str(error.value)


def test_an_end_past_the_video_is_cut_to_its_duration():
    assert parse_spans([[60, 70.5], [1, 2]], "x", 64.0) == [(60.0, 64.0), (1.0, 2.0)]


def test_rows_carry_spans_and_bad_ones_are_counted_skips(tmp_path):
    rows = [
        {"id": "a", "video": "a.mp4", "conversations": CONV, "relevant_spans": [[1, 3]]},
        {"id": "b", "video": "b.mp4", "conversations": CONV, "relevant_spans": [[3, 1]]},
        {"id": "c", "video": "c.mp4", "conversations": CONV, "duration": 10, "relevant_spans": [[12, 13]]},
        {"id": "d", "video": "d.mp4", "conversations": CONV},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = SkipLog()
    records = load_annotations(path, skip_log=log)
    assert [(r.id, r.relevant_spans) for r in records] == [("a", [(1.0, 3.0)]), ("d", None)]
    assert len(log) == 2 and "relevant_spans" not in records[0].meta
    with pytest.raises(AnnotationError, match="ends before it starts"):
        parse_row(rows[1], "rows.jsonl:2")


def test_synthetic_rows_label_the_needle_segments_of_the_decoded_video(tiny_needle_benchmark):
    from tempo_kit.data.dataset import TempoDataset

    records = load_annotations(tiny_needle_benchmark)
    dataset = TempoDataset(records, tiny_needle_benchmark.parent, sampling=Sampling.training(backend="pyav"))
    for record in records:
        start, end = record.relevant_spans[0]
        assert (start, end) == (record.meta["needle_start"], record.meta["needle_end"])
        sample = dataset[records.index(record)]
        starts = sample.segments.frame_times[:, 0]
        expected = [
            float(lo < end and hi > start)
            for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), record.meta["duration"]])
        ]
        assert sample.segment_labels.tolist() == expected
        assert record.meta["needle_segment"] in sample.segment_labels.nonzero().flatten().tolist()


def test_a_span_starting_after_the_decoded_video_is_a_counted_skip(tiny_needle_benchmark, tmp_path):
    from tempo_kit.data.dataset import TempoDataset

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    row["video"] = str(tiny_needle_benchmark.parent / row["video"])
    row["relevant_spans"] = [[30.0, 31.0]]  # the video lasts 12 s; the row gives no duration
    row.pop("duration")
    path = tmp_path / "late.jsonl"
    path.write_text(json.dumps(row) + "\n")
    log = SkipLog()
    dataset = TempoDataset(
        load_annotations(path), sampling=Sampling.training(backend="pyav"), skip_log=log, max_replacements=0
    )
    with pytest.raises(Exception, match="consecutive samples"):
        dataset[0]
    assert "starts at or after the end of the video (12.00 s)" in log.records[0].reason


def test_charades_sta_lines_become_rows_and_bad_lines_are_counted(tmp_path):
    source = tmp_path / "charades_sta_test.txt"
    source.write_text(
        "3MSZA 24.3 30.4##person turn a light on.\n"
        "3MSZA 30.4 24.3##person opens the door.\n"  # end < start
        "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"
        "AO8RW 40.0 44.0##person leaves.\n"  # past the 33.67-s video
        "broken line\n"
    )
    durations = tmp_path / "Charades_v1_test.csv"
    durations.write_text("id,subject,length\n3MSZA,x,32.0\nAO8RW,y,33.67\n")
    out = tmp_path / "router.jsonl"
    result = convert_grounding(source, out, "charades-sta", video_pattern="videos/{vid}.mp4", durations=durations)
    assert result.rows == 2
    assert result.skipped == {"ends before it starts": 1, "starts at or after the end": 1, "not 'VIDEO_ID START END##SENTENCE'": 1}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["video"] == "videos/3MSZA.mp4" and rows[0]["relevant_spans"] == [[24.3, 30.4]]
    assert rows[0]["duration"] == 32.0 and rows[0]["question"] == "person turn a light on."
    records = load_annotations(out, on_error="raise")  # the written rows are valid annotation rows
    assert records[1].turns[0].text == "<video>\na person is putting a book on a shelf."


def test_qvhighlights_rows_keep_every_window_and_the_cli_reports_counts(tmp_path, capsys):
    from tempo_kit.cli import main

    source = tmp_path / "highlight_val_release.jsonl"
    rows = [
        {"qid": 2579, "query": "A girl and her mother cooked.", "duration": 150, "vid": "NUsG9BgSes0_210.0_360.0",
         "relevant_windows": [[0, 14], [22, 40]]},
        {"qid": 7, "query": "Nothing.", "duration": 150, "vid": "x", "relevant_windows": [[160, 170]]},
    ]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "qv.jsonl"
    assert main(["convert-grounding", "--format", "qvhighlights", str(source), str(out)]) == 0
    assert "1 rows written; skipped: 1× starts at or after the end" in capsys.readouterr().out
    row = json.loads(out.read_text())
    assert row["id"] == "2579" and row["relevant_spans"] == [[0.0, 14.0], [22.0, 40.0]]
    assert row["video"] == "NUsG9BgSes0_210.0_360.0.mp4"
    assert main(["convert-grounding", "--format", "qvhighlight", str(source), str(out)]) == 2
    assert "did you mean 'qvhighlights'" in capsys.readouterr().err


def test_qvhighlights_rows_that_would_be_written_wrong_are_counted_skips(tmp_path, capsys):
    from tempo_kit.cli import main

    good = {"qid": 1, "query": "A dog runs.", "vid": "a", "relevant_windows": [[0, 150]]}
    lines = [
        json.dumps({**good, "duration": "30"}),  # a number written as text: still cuts the span at 30 s
        json.dumps({**good, "qid": 2, "relevant_windows": [[0, float("inf")]]}),  # written as Infinity
        json.dumps({**good, "qid": 3, "duration": "long"}),
        json.dumps({**good, "qid": 4, "query": {"en": "A dog runs."}}),
    ]
    source = tmp_path / "qv.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "rows.jsonl"
    assert main(["convert-grounding", "--format", "qvhighlights", str(source), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 rows written; skipped: " in printed
    for reason in ("1× must be", "1× 'duration' is not a number of seconds", "1× 'query' is not text"):
        assert reason in printed
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]  # strict JSON: no Infinity
    assert row["relevant_spans"] == [[0.0, 30.0]] and row["duration"] == 30.0


def test_convert_grounding_refuses_its_source_as_output_and_bad_source_files(tmp_path, capsys):
    from tempo_kit.cli import main

    source = tmp_path / "charades.txt"
    source.write_text("3MSZA 24.3 30.4##person turn a light on.\n")
    before = source.read_text()
    assert main(["convert-grounding", "--format", "charades-sta", str(source), str(source)]) == 2
    assert f"output {source} is the source file: write the rows to another file" in capsys.readouterr().err
    assert source.read_text() == before
    out = tmp_path / "rows.jsonl"
    durations = tmp_path / "lengths.csv"
    durations.write_text("id,length\n3MSZA,about a minute\n")
    assert main(["convert-grounding", "--format", "charades-sta", str(source), str(out), "--durations",
                 str(durations)]) == 2  # fmt: skip
    assert "lengths.csv:2: length 'about a minute' of '3MSZA' is not a positive number" in capsys.readouterr().err
    source.write_bytes("3MSZA 24.3 30.4##caf\xe9\n".encode("latin-1"))
    assert main(["convert-grounding", "--format", "charades-sta", str(source), str(out)]) == 2
    assert "is not UTF-8 text (byte 0xe9 on line 1)" in capsys.readouterr().err
    assert not out.exists()
