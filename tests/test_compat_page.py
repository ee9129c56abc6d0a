"""The compatibility matrix page is the rendering of the committed matrix results, not hand-written."""

from __future__ import annotations

import json

from repo_scripts import ROOT, load_script


def test_page_is_the_rendering_of_the_committed_results():
    script = load_script("scripts/compat_matrix.py")
    results = json.loads(script.RESULTS.read_text())
    page = (ROOT / "docs" / "compatibility_matrix.md").read_text()
    assert page == script.render(results), "docs/compatibility_matrix.md is stale: python scripts/compat_matrix.py render"


def test_results_cover_every_pair_and_check():
    from compat_pairs import pair_id, pairs

    script = load_script("scripts/compat_matrix.py")
    results = json.loads(script.RESULTS.read_text())
    assert set(results["pairs"]) == {pair_id(p) for p in pairs()}, "rerun: python scripts/compat_matrix.py run"
    assert all(set(row) == set(results["checks"]) for row in results["pairs"].values())
    assert set(results["checks"]) == set(script.TITLES)
