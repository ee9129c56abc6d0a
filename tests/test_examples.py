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



def checkpoint_flags(name: str, tiny: dict[str, Path], tempo: Path) -> list[str]:
    """The flags a user passes for their own checkpoints, here pointing at the session's tiny ones
    (an example not listed runs with no flags and builds its own)."""
    svlm, llm = str(tiny["svlm"]), str(tiny["llm"])
    return {
        "compressor_and_ata.py": ["--svlm", svlm],
        "pooling_compressor.py": ["--svlm", svlm, "--llm", llm],
        "infer_video.py": ["--model", str(tempo)],
        "ask_many_questions.py": ["--model", str(tempo)],
        "lora_finetune.py": ["--svlm", svlm, "--llm", llm],
        "other_backbone_loop.py": ["--svlm", svlm],  # and a tiny Llama 3 it writes itself
    }.get(name, [])


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_in_tiny_mode(script, tiny_checkpoints, tiny_tempo_dir, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    flags = checkpoint_flags(script.name, tiny_checkpoints, tiny_tempo_dir)
    result = subprocess.run(
        [sys.executable, str(script), *flags], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def test_gallery_includes_every_example():
    pages = "".join(page.read_text() for page in GALLERY.glob("*.md"))
    included = set(re.findall(r'--8<-- "examples/([^"/]+\.py)"', pages))
    assert included == {p.name for p in EXAMPLES}


def test_an_example_that_builds_its_own_tiny_model_leaves_no_temporary_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    script = ROOT / "examples" / "compressor_and_ata.py"  # no --svlm: it builds a tiny Qwen3-VL
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(scratch.glob("tempo-*"))
