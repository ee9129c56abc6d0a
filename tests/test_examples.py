"""Every script in examples/ runs as-is on tiny checkpoints, and the gallery page includes each one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
GALLERY = ROOT / "docs" / "examples"

#: Examples read prepared tiny checkpoints (``svlm/`` and ``llm/``) from here instead of building them.
TINY_DIR_ENV = "TEMPO_KIT_TINY_DIR"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_in_tiny_mode(script, tiny_checkpoints, tmp_path):
    env = {**os.environ, TINY_DIR_ENV: str(Path(tiny_checkpoints["llm"]).parent), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def test_gallery_includes_every_example():
    pages = "".join(page.read_text() for page in GALLERY.glob("*.md"))
    included = set(re.findall(r'--8<-- "examples/([^"/]+\.py)"', pages))
    assert included == {p.name for p in EXAMPLES}
