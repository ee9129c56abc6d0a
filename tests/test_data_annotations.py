"""Annotation files: JSON list / JSONL, row checks, malformed rows skipped or raised with file:line."""

from __future__ import annotations

import json

import pytest

from tempo_kit.data import AnnotationError, SkipLog, load_annotations, parse_row

GOOD = {
    "id": "a",
    "video": "v.mp4",
    "conversations": [{"from": "human", "value": "<video>\nQ?"}, {"from": "gpt", "value": "A."}],
    "answer": "B",
    "options": ["x", "y"],
    "category": "colour",
}


def test_json_list_and_jsonl(tmp_path):
    rows = [
        GOOD,
        {**GOOD, "id": "b", "video": None, "image": "i.png"},
        {"conversations": GOOD["conversations"]},
    ]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    for name in ("a.json", "a.jsonl"):
        records = load_annotations(tmp_path / name, on_error="raise")
        assert [r.kind for r in records] == ["video", "image", "text"]
        assert records[0].turns[0].role == "user" and records[0].turns[1].role == "assistant"
        assert records[0].answer == "B" and records[0].options == ["x", "y"]
        assert records[0].meta == {"category": "colour"}
        assert records[2].id == f"{tmp_path / name}:3"  # default id: file:line


def test_multi_turn(tmp_path):
    turns = [{"from": f, "value": f"t{i}"} for i, f in enumerate(["human", "gpt"] * 3)]
    record = parse_row({"conversations": turns}, "x:1")
    assert [t.role for t in record.turns] == ["user", "assistant"] * 3


BAD_ROWS = [
    ("[1, 2]", "must be a JSON object"),
    ('{"video": "v.mp4"}', "'conversations' must be a non-empty list"),
    ('{"conversations": []}', "'conversations' must be a non-empty list"),
    ('{"conversations": [{"from": "gpt", "value": "x"}]}', "alternate human/gpt"),
    ('{"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]}', "alternate"),
    ('{"conversations": [{"from": "robot", "value": "a"}]}', "expected 'human' or 'gpt'"),
    ('{"conversations": [{"from": "human"}]}', "string 'value'"),
    ('{"video": "a.mp4", "image": "b.png", "conversations": [{"from": "human", "value": "q"}]}', "not both"),
    ('{"video": 3, "conversations": [{"from": "human", "value": "q"}]}', "'video' must be"),
    ('{"options": "abc", "conversations": [{"from": "human", "value": "q"}]}', "'options'"),
    ('{"conversations": [{"from": "human", "value": "q"}', "not valid JSON"),
]


@pytest.mark.parametrize("line, reason", BAD_ROWS)
def test_malformed_rows(tmp_path, line, reason):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n" + json.dumps(GOOD) + "\n")
    log = SkipLog()
    records = load_annotations(path, on_error="skip", skip_log=log)
    assert len(records) == 2 and len(log) == 1
    assert log.records[0].sample == f"{path}:2" and reason.split("|")[0] in log.records[0].reason
    with pytest.raises(AnnotationError, match=f"a.jsonl:2.*{reason}"):
        load_annotations(path, on_error="raise")


def test_bad_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        load_annotations(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(AnnotationError, match="bad.json is not valid JSON"):
        load_annotations(tmp_path / "bad.json")
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(AnnotationError, match="JSON list"):
        load_annotations(tmp_path / "obj.json")
