"""`tempo-kit eval` argument handling: sweeps, budgets, setting names (no model needed)."""

from __future__ import annotations

import argparse

import pytest

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.command import _budget, add_arguments, setting_name, settings_from_args
from tempo_kit.model.config import TempoConfig


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--model", "m", "--annotations", "a.jsonl", "--output", "o", *argv])


MODEL_CONFIG = TempoConfig.from_mapping(
    {"compressor": {"name": "qwen3_vl"}, "decoder": {"name": "hf_causal_lm"}}
)


def test_budget_accepts_k_suffix():
    assert _budget("4096") == 4096 and _budget("4k") == 4096 and _budget("8K") == 8192
    with pytest.raises(ValueError, match="not an integer"):
        _budget("4.5k")


def test_defaults_come_from_the_model_config():
    (setting,) = settings_from_args(parse(), MODEL_CONFIG)
    assert (setting["budget"], setting["allocator"], setting["reduction"], setting["k_min"]) == (
        8192,
        {"name": "ata"},
        "head",
        4,
    )
    assert setting_name(setting) == "b8192_ata_head_kmin4_trained-default"


def test_the_model_allocator_keeps_its_arguments():
    import dataclasses

    config = dataclasses.replace(MODEL_CONFIG, allocator={"name": "ata", "mode": "exact"})
    (setting,) = settings_from_args(parse(), config)
    assert setting["allocator"] == {"name": "ata", "mode": "exact"}
    assert setting_name(setting) == "b8192_ata-mode-exact_head_kmin4_trained-default"


def test_sweep_is_every_combination():
    args = parse(
        "--budget", "4k,8192", "--allocator", "ata,uniform", "--relevance-prompt", "routing,qwen_default"
    )
    settings = settings_from_args(args, MODEL_CONFIG)
    assert len(settings) == 8
    names = {setting_name(s) for s in settings}
    assert len(names) == 8 and "b4096_uniform_head_kmin4_trained-qwen_default" in names
    with pytest.raises(ConfigError, match="comma-separated"):
        settings_from_args(parse("--k-min", "4,x"), MODEL_CONFIG)


def test_literal_prompt_gives_a_safe_file_name():
    (setting,) = settings_from_args(parse("--relevance-prompt", "Is this/that relevant?"), MODEL_CONFIG)
    assert "/" not in setting_name(setting) and " " not in setting_name(setting)


def test_print_prompts_needs_no_model(tmp_path, capsys):
    import json

    from tempo_kit.cli import main

    question = "What is the score?\n(A) 1-0\n(B) 0-0"
    row = {"uid": "7", "key": "k", "question": question, "answer": "B", "question_type": ["counting"]}
    path = tmp_path / "lvbench.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert main(["eval", "--format", "lvbench", "--annotations", str(path), "--print-prompts"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "id": "7",
        "prompt": question + "\nAnswer the question with the option letter",
        "options": ["1-0", "0-0"],
        "answer": "B",
        "max_new_tokens": 16,
    }
    assert main(["eval", "--format", "lvbnch", "--annotations", str(path), "--print-prompts"]) == 2
    assert (
        "--format 'lvbnch': unknown benchmark format 'lvbnch' (did you mean 'lvbench'?). "
        "Known: longvideobench, lvbench, mlvu, videomme. Or use kit: the harness's own fields."
    ) in capsys.readouterr().err


def test_missing_videos_stop_the_run_before_the_model_loads_and_list_them(tmp_path, capsys):
    import json

    from tempo_kit.cli import main

    rows = [
        {"id": f"q{i}", "video": f"v{i}.mp4", "question": "q", "options": ["a", "b"], "answer": "A"}
        for i in range(3)
    ]
    (tmp_path / "v1.mp4").write_bytes(b"")
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--annotations", str(path), "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "2 of 3 questions have no video file" in error
    assert f"{tmp_path / 'v0.mp4'}" in error and f"{tmp_path / 'v2.mp4'}" in error
    assert "--missing-video skip" in error and not (tmp_path / "o").exists()


def test_print_prompts_names_each_skipped_row_as_eval_does_and_an_object_question_is_one(tmp_path, capsys):
    import json

    from tempo_kit.cli import main

    good = {"id": "1", "video": "v.mp4", "question": "What?", "options": ["yes", "no"], "answer": "A"}
    rows = [good, {**good, "id": "2", "question": {"en": "What?"}}, {**good, "id": "3", "answer": "Z"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["eval", "--annotations", str(path), "--print-prompts"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == ["1"]  # stdout: prompts only
    skipped = captured.err.splitlines()
    assert len(skipped) == 2 and all(line.startswith(f"skipped {path} row ") for line in skipped)
    assert "(id '2'): question is {'en': 'What?'}; a question is plain text" in skipped[0]
    assert "(id '3'): answer 'Z' is not one of the option letters" in skipped[1]
