"""Each rule that can be grepped for has one home (docs/concepts/architecture.md, "Where each rule lives").

A second copy of a rule drifts from the first; these checks find the copies a grep can see.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tempo_kit.defaults as defaults
from tempo_kit.moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "tempo_kit"
#: Spells its own decoder default still; to read tempo_kit.defaults.DEFAULT_BACKEND like the rest.
KNOWN_DEFAULT_COPIES = {"data/datamodule.py"}


def sources() -> dict[str, str]:
    return {str(path.relative_to(SRC)): path.read_text() for path in SRC.rglob("*.py")}


def homes(pattern: str) -> list[str]:
    """The files of ``src/tempo_kit`` with a line matching ``pattern``."""
    regex = re.compile(pattern, re.MULTILINE)
    return sorted(name for name, text in sources().items() if regex.search(text))


@pytest.mark.parametrize("name", sorted(n for n in vars(defaults) if n.isupper()))
def test_every_released_number_is_assigned_once(name):
    assert homes(rf"^{name}(: [^=\n]+)? = ") == ["defaults.py"]


@pytest.mark.parametrize(
    ("rule", "pattern", "home"),
    [
        ("a checkpoint folder's weight files", r"^def weight_files\(", ["hf_folder.py"]),
        ("the safetensors index name", r"^SAFE_INDEX = ", ["hf_folder.py"]),
        ("the compressor's system-prompt names", r"^COMPRESSOR_PROMPTS = |\"qwen_default\":", ["compressors/prompts.py"]),
        ("the time-tag format", r"^TIME_TAG_TEMPLATE = |f[\"']<\{[^}]*\} ?seconds>", ["time_tags.py"]),
        ("the question's settings", r"^def resolve_question\(", ["inference/question.py"]),
        ("the executor of a compressor call plan", r"^def plan_pieces\(", ["model/compression.py"]),
        ("where a feature-store batch is recognised", r"(?<!def )\bis_stored\(", ["model/tempo_model.py"]),
        ("frames of a window the SVLM sees", r"lengths is None else int\(", ["types.py"]),
        ("a square frame's normalisation", r"- self\.mean\.to\(", ["compressors/square_frames.py"]),
        ("plain text's ids in an SVLM sequence", r"split_special_tokens=True", ["compressors/sequence.py"]),
        ("memory to the projector's dtype", r"next\([^)]*projector\.parameters\(\)", ["model/visual_selection.py"]),
        ("sampling switches (generated from Sampling's fields)", r"add_argument\(\s*\"--max-frames\"", []),
    ],
)
def test_rule_has_one_home(rule, pattern, home):
    assert homes(pattern) == home, rule


def test_the_decoder_default_is_spelt_once():
    spelt = [name for name in homes(r"(backend|BACKEND)(: str)? = \"decord\"") if name not in KNOWN_DEFAULT_COPIES]
    assert spelt == ["defaults.py"]


def test_hf_layer_does_not_import_checkpoints():
    assert "tempo_kit.checkpoints" not in (SRC / "hf.py").read_text()


def test_the_kit_imports_from_the_real_homes():
    """No old import path (tempo_kit.moved) is used by the kit, its tests, examples or benchmarks."""
    old = []
    for folder in ("src", "tests", "examples", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("moved.py", "test_single_homes.py") or path == SRC / "checkpoints" / "files.py":
                continue
            text = path.read_text()
            for path_name in MOVED:
                module, _, name = path_name.rpartition(".")
                if re.search(rf"from {re.escape(path_name)} import|import {re.escape(path_name)}\b", text) or (
                    re.search(rf"from {re.escape(module)} import [^\n]*\b{name}\b", text)
                ):
                    old.append(f"{path.relative_to(ROOT)}: {path_name}")
    assert old == []


def imported_modules(path: Path) -> set[str]:
    """Every ``tempo_kit`` module a file imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tempo_kit"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tempo_kit"))
    return found


def test_no_import_circle_in_inference():
    package = SRC / "inference"
    graph = {
        f"tempo_kit.inference.{path.stem}": {m for m in imported_modules(path) if m.startswith("tempo_kit.inference.")}
        for path in package.glob("*.py")
        if path.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [m for m in graph if reaches(m, m, set())] == []
    assert "tempo_kit.inference.api" not in graph["tempo_kit.inference.session"]
