"""What users of Lightning, torchtune and Hugging Face reach for: shipped recipes by name, recipe
composition, ``--version``, help per verb that loads fast, component specs on the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tempo_kit.cli import main
from tempo_kit.errors import ConfigError
from tempo_kit.recipes import load_recipe
from tempo_kit.recipes.shipped import describe, shipped_recipes
from tempo_kit.registry import ALLOCATORS, RegistryError, check_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]


def test_recipes_list_show_copy(capsys, tmp_path):
    assert main(["recipes", "list"]) == 0
    listed = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert set(listed) == {p.stem for p in (ROOT / "recipes").glob("*.yaml")}
    assert listed["stage2"].startswith("Stage 2, broad SFT (paper Table A)")
    assert main(["recipes", "show", "stage3_lora"]) == 0
    assert capsys.readouterr().out == (ROOT / "recipes" / "stage3_lora.yaml").read_text()
    assert main(["recipes", "copy", "stage3_lora", str(tmp_path / "mine")]) == 0
    # the recipe and the base chain it builds on, byte for byte
    for name in ("stage3_lora.yaml", "stage3.yaml", "base.yaml"):
        assert (tmp_path / "mine" / name).read_bytes() == (ROOT / "recipes" / name).read_bytes()
    copied = load_recipe(tmp_path / "mine" / "stage3_lora.yaml", check_paths=False)
    assert copied == load_recipe("stage3_lora", check_paths=False)
    with pytest.raises(ConfigError, match="already exist"):  # never overwrites
        from tempo_kit.recipes.shipped import copy_recipe

        copy_recipe("stage3_lora", tmp_path / "mine")


def test_recipe_by_name_and_unknown_name(capsys):
    assert main(["fit", "--recipe", "stage2", "--print"]) == 0
    assert "name: stage2" in capsys.readouterr().out
    assert main(["fit", "--recipe", "stage_2", "--print"]) == 2
    err = capsys.readouterr().err
    assert "no shipped recipe 'stage_2' (did you mean 'stage2'?)" in err and "tempo-kit recipes list" in err


def test_describe_skips_the_launch_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# tempo-kit fit --recipe r.yaml\n\n# What it trains.\nrun: {}\n")
    assert describe(path) == "What it trains."
    assert all(describe(p) for p in shipped_recipes().values())  # every shipped recipe says what it is


@pytest.mark.slow
def test_the_wheel_carries_the_recipes(tmp_path):
    tree = tmp_path / "tree"  # build from a copy: the build writes its own files beside the sources
    for part in ("src", "recipes"):
        shutil.copytree(ROOT / part, tree / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(tree)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("tempo_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("tempo_kit/shipped_recipes/")}
        assert "tempo_kit/py.typed" in archive.namelist()  # type checkers read the kit's annotations
        archive.extractall(tmp_path / "site")
    assert shipped == {f"tempo_kit/shipped_recipes/{p.name}" for p in (ROOT / "recipes").glob("*.yaml")}
    # installed from the wheel alone, the kit finds them by name from any folder
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from tempo_kit.cli import main; sys.exit(main(['recipes', 'show', 'stage2']))"],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "recipes" / "stage2.yaml").read_text()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_replace_marker_swaps_a_mapping_of_the_base(tmp_path):
    write(tmp_path / "base.yaml", "model:\n  compressor: {name: qwen3_vl, pretrained: svlm, padding_side: left}\n")
    merged = write(tmp_path / "merged.yaml", "base: base.yaml\nmodel:\n  compressor: {name: pooling, pretrained: vt}\n")
    replaced = write(
        tmp_path / "replaced.yaml", "base: base.yaml\nmodel:\n  compressor: {_replace_: true, name: pooling, pretrained: vt}\n"
    )
    with pytest.raises(ConfigError) as error:  # merging drags qwen3_vl's arguments into pooling
        load_recipe(merged, check_paths=False)
    message = str(error.value)
    assert "model.compressor ('pooling') got unknown argument 'padding_side'" in message
    assert "~model.compressor.padding_side" in message and "`_replace_: true`" in message
    cfg = load_recipe(replaced, check_paths=False)
    assert dict(cfg.model.compressor) == {"name": "pooling", "pretrained": "vt"}
    bad = write(tmp_path / "bad.yaml", "base: base.yaml\nmodel:\n  compressor: {_replace_: yes please, name: pooling}\n")
    with pytest.raises(ConfigError, match=r"model.compressor._replace_ must be true or false"):
        load_recipe(bad, check_paths=False)


def test_version_and_help_per_verb(capsys):
    from tempo_kit import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"tempo-kit {__version__}"
    for verb, present, absent in (("fit", "--resume", "--ckpt"), ("validate", "--ckpt", "--resume")):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = capsys.readouterr().out
        assert present in text and absent not in text, verb


@pytest.mark.parametrize(
    "verb",
    ["fit", "validate", "infer", "eval", "predict", "push", "convert", "make-tiny", "make-synthetic", "prepare", "recipes",
     "components", "serve"],
)
def test_help_imports_no_torch(verb):
    code = (
        "import sys\nfrom tempo_kit.cli import main\n"
        f"try:\n    main([{verb!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'lightning', 'decord', 'av') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_component_specs_on_the_command_line():
    assert parse_spec("ata:mode=exact", "--allocator") == {"name": "ata", "mode": "exact"}
    assert parse_spec("topk", "--allocator") == {"name": "topk"}
    assert parse_spec("x:a=2:b=true:c=0.5", "--allocator") == {"name": "x", "a": 2, "b": True, "c": 0.5}
    check_spec(ALLOCATORS, parse_spec("ata:mode=exact", "--allocator"), "--allocator ata:mode=exact")
    with pytest.raises(RegistryError, match=r"^--allocator ata:mode=exactly: allocator 'ata'"):
        check_spec(ALLOCATORS, {"name": "ata", "mode": "exactly", "k": 1}, "--allocator ata:mode=exactly")
