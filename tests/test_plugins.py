"""Third-party components as users install them: a real plugin package (pip install --target),
a broken one, ``tempo-kit components``, and the plugin package recorded in an exported model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PLUGIN = ROOT / "examples" / "plugin_package"


def run(code_or_argv, *paths: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -c CODE`` or ``python -m tempo_kit.cli ARGV`` with ``paths`` importable, as after pip install."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*paths, SRC]))}
    argv = ["-c", code_or_argv] if isinstance(code_or_argv, str) else ["-m", "tempo_kit.cli", *code_or_argv]
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """examples/plugin_package installed with pip into its own folder (no index, no build isolation)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, work / "source")  # pip writes build files beside the sources
    target = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="module")
def broken_plugin(tmp_path_factory):
    """An installed distribution whose projector entry point fails to import."""
    site = tmp_path_factory.mktemp("broken")
    info = site / "tempo_broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tempo-broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tempo_kit.projectors]\nbroken = tempo_broken_plugin:Projector\n")
    (site / "tempo_broken_plugin.py").write_text("import a_module_that_is_not_installed\n")
    return site


def test_components_lists_a_plugin_with_its_package(installed_plugin):
    done = run(["components", "projectors"], installed_plugin)
    assert done.returncode == 0, done.stderr
    rows = dict(line.split() for line in done.stdout.splitlines()[1:])
    assert rows["gated"] == "tempo-gated-projector" and rows["linear"] == "tempo-kit"


def test_a_broken_plugin_leaves_the_builtins_working(broken_plugin):
    done = run(["components"], broken_plugin)
    assert done.returncode == 0, done.stderr
    assert "  linear      tempo-kit" in done.stdout and re.search(r"\n  qwen3_vl +tempo-kit\n", done.stdout)
    broken = done.stdout[done.stdout.index("broken plugins (set aside):") :]
    assert "projectors/broken: plugin 'broken' (tempo_broken_plugin:Projector, package 'tempo-broken-plugin')" in broken
    assert "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'" in broken
    code = (
        "from tempo_kit.registry import PROJECTORS, RegistryError\n"
        "print(type(PROJECTORS.build({'name': 'linear', 'in_features': 2, 'out_features': 3})).__name__)\n"
        "try:\n    PROJECTORS.get('broken')\nexcept RegistryError as error:\n    print(error)\n"
    )
    done = run(code, broken_plugin)
    assert done.returncode == 0, done.stderr
    built, error = done.stdout.splitlines()
    assert built == "LinearProjector"
    assert error.startswith("plugin 'broken'") and "pip uninstall tempo-broken-plugin" in error


@pytest.mark.slow
def test_an_export_names_the_plugin_package_to_install(installed_plugin, tiny_checkpoints, tmp_path):
    out = tmp_path / "model"
    code = (
        "from tempo_kit.model import TempoModel\n"
        "TempoModel.from_config({"
        f"'compressor': {{'name': 'qwen3_vl', 'pretrained': {str(tiny_checkpoints['svlm'])!r}, 'k_max': 4}},"
        f"'decoder': {{'name': 'hf_causal_lm', 'pretrained': {str(tiny_checkpoints['llm'])!r}}},"
        f"'projector': {{'name': 'gated'}}}}).save_pretrained({str(out)!r})\n"
    )
    done = run(code, installed_plugin)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "tempo_config.json").read_text())["packages"] == {"projector": "tempo-gated-projector"}
    video = tmp_path / "missing-on-purpose.mp4"
    video.write_bytes(b"")  # the model folder is read before the video
    done = run(["infer", "--model", str(out), "--video", str(video), "--query", "q"])  # plugin not installed
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "its projector 'gated' comes from the package 'tempo-gated-projector', which is not installed here: "
        "pip install tempo-gated-projector" in done.stderr
    )
