"""The spellings Lightning, Hydra and W&B users type: LightningCLI's ``--config``/``-c``/
``--a.b=c``/``--print_config``, overrides on both sides of an option, and ``--multirun``."""

from __future__ import annotations

import pytest

from tempo_kit.cli import main, parse_verb
from tempo_kit.errors import ConfigError


def printed(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("verb", ["fit", "validate", "test"])
def test_lightning_spellings_resolve_like_key_value(capsys, verb):
    expected = printed(capsys, verb, "--recipe", "demo", "trainer.max_epochs=3", "optim.weight_decay=0.1", "--print")
    assert "max_epochs: 3" in expected and "weight_decay: 0.1" in expected
    for argv in (
        ["--config", "demo", "--trainer.max_epochs=3", "--optim.weight_decay", "0.1", "--print_config"],
        ["-c", "demo", "--print", "--trainer.max_epochs", "3", "optim.weight_decay=0.1"],
        ["trainer.max_epochs=3", "--recipe", "demo", "--print", "optim.weight_decay=0.1"],
    ):
        assert printed(capsys, verb, *argv) == expected, argv


def test_overrides_on_both_sides_of_an_option():
    _, args = parse_verb("fit", ["--recipe", "demo", "a.b=1", "--resume", "last", "c.d=2"])
    assert args.overrides == ["a.b=1", "c.d=2"] and args.resume == "last" and args.recipe == "demo"
    _, args = parse_verb("validate", ["x=1", "--recipe", "demo", "y=2", "--ckpt", "last", "z=3"])
    assert args.overrides == ["x=1", "y=2", "z=3"] and args.ckpt == "last"
    _, args = parse_verb("eval", ["--model", "m", "--annotations", "a.jsonl", "--budget", "64"])
    assert args.model == "m" and args.budget == "64"  # every verb parses the same way
    _, args = parse_verb("recipes", ["show", "demo"])  # sub-commands still parse
    assert args.command == "recipes"


def test_a_dotted_option_without_value_is_one_line(capsys):
    assert main(["fit", "--recipe", "demo", "--print", "--trainer.max_epochs"]) == 2
    assert "--trainer.max_epochs needs a value" in capsys.readouterr().err


def test_sweep_expands_top_level_commas_only():
    from tempo_kit.training.multirun import sweep

    jobs = sweep(["a=1,2", "data.train_files=[x.jsonl,y.jsonl]", "b='p,q',r"])
    assert jobs == [
        ["a=1", "data.train_files=[x.jsonl,y.jsonl]", "b='p,q'"],
        ["a=1", "data.train_files=[x.jsonl,y.jsonl]", "b=r"],
        ["a=2", "data.train_files=[x.jsonl,y.jsonl]", "b='p,q'"],
        ["a=2", "data.train_files=[x.jsonl,y.jsonl]", "b=r"],
    ]
    with pytest.raises(ConfigError, match="empty value"):
        sweep(["a=1,"])


def test_multirun_print_gives_one_recipe_per_combination(capsys, tmp_path):
    out = printed(capsys, "fit", "--recipe", "demo", "--multirun", "optim.weight_decay=0.0,0.1",
                  f"run.output_dir={tmp_path}/sweep", "--print")  # fmt: skip
    assert out.count("# multirun ") == 2
    first, second = out.split("# multirun 2/2")
    assert "weight_decay: 0.0" in first and f"output_dir: {tmp_path}/sweep/0" in first
    assert "weight_decay: 0.1" in second and f"output_dir: {tmp_path}/sweep/1" in second


def test_recipes_list_keeps_whole_words(capsys):
    import re

    from tempo_kit.recipes.shipped import shipped_recipes

    recipes = shipped_recipes()
    out = printed(capsys, "recipes", "list")
    for line in out.splitlines():
        name, description = line.split(maxsplit=1)
        heading = " ".join(x.lstrip("#").strip() for x in recipes[name].read_text().splitlines() if x.startswith("#"))
        words = description.removesuffix(" …").split()
        assert words and re.search(r"(?<!\S)" + re.escape(" ".join(words)) + r"(?!\S)", heading), line
        assert len(description) <= 110


def test_counts_print_as_whole_numbers():
    from tempo_kit.training.commands import format_metric

    assert format_metric("val/open_scored", 64) == "val/open_scored: 64"
    assert format_metric("val/loss", 1.25) == "val/loss: 1.2500"
