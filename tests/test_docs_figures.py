"""The docs' allocation figure says what its caption says, and the script that draws it runs.

The home page captions ``docs/assets/infer-allocation.png`` "the bars rise where the question's
moment is (shaded)". ``scripts/docs_figures.py`` draws it from the demo model and writes the
figure's numbers beside it (``infer-allocation.json``); the committed numbers are checked here,
so a figure regenerated from a model whose relevance misses the moment fails the suite.
"""

from __future__ import annotations

import json

import pytest
from repo_scripts import ROOT, load_script

FIGURE = ROOT / "docs" / "assets" / "infer-allocation.png"
DATA = ROOT / "docs" / "assets" / "infer-allocation.json"


def overlaps(data: dict) -> list[bool]:
    """Per segment: does its time span meet the shaded span?"""
    half = data["segment_seconds"] / 2
    start, end = data["shaded"]
    return [t - half < end and t + half > start for t in data["times"]]


def test_the_committed_figure_gives_the_shaded_moment_the_most_tokens():
    data = json.loads(DATA.read_text())
    counts, shaded = data["counts"], overlaps(data)
    assert FIGURE.is_file() and data["model"] == "outputs/demo/final"  # drawn from the demo model
    assert sum(counts) <= data["budget"] < len(counts) * data["k_max"]  # the budget binds
    inside = [c for c, s in zip(counts, shaded) if s]
    outside = [c for c, s in zip(counts, shaded) if not s]
    assert inside and outside
    assert min(inside) > max(outside)  # every segment the shape is on beats every other one
    assert all(c >= data["k_min"] for c in counts)  # ATA's anchors
    best = max(range(len(counts)), key=lambda i: data["relevance"][i])
    assert shaded[best]  # and the relevance peaks there too


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"segment_seconds": 4.0, "shaded": [14.0, 18.0], "times": [2.0, 14.0, 18.0, 22.0]}, [False, True, True, False]),
        ({"segment_seconds": 4.0, "shaded": [16.0, 18.0], "times": [14.0, 18.0, 22.0]}, [False, True, False]),
    ],
)
def test_overlaps_reads_segment_spans_around_their_times(data, expected):
    assert overlaps(data) == expected


def test_the_script_draws_the_figure_and_writes_its_numbers(tiny_tempo_dir, tmp_path, capsys):
    """On a tiny random model (relevance is noise): the files and their agreement, not the peak."""
    script = load_script("scripts/docs_figures.py")
    assert script.main(["--model", str(tiny_tempo_dir), "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "infer-allocation.json").read_text())
    assert (tmp_path / "infer-allocation.png").stat().st_size > 10_000
    segments = int(script.DURATION_S * script.SAMPLE_FPS) // script.WINDOW
    assert len(data["counts"]) == len(data["relevance"]) == len(data["times"]) == segments
    assert sum(data["counts"]) <= data["budget"] == script.BUDGET
    assert 0 < data["shaded"][0] < data["shaded"][1] < script.DURATION_S
    assert data["model"] == str(tiny_tempo_dir)
    assert "infer-allocation.png: " in capsys.readouterr().out


def test_the_script_refuses_a_folder_without_a_model(tmp_path, capsys):
    script = load_script("scripts/docs_figures.py")
    assert script.main(["--model", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"docs_figures: error: --model {tmp_path / 'none'}: no exported model; run bash scripts/demo.sh first"
    )
