"""The Question record: settings resolved once, on the model's config, refused before any decoding."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tempo_kit.errors import ConfigError
from tempo_kit.inference.question import MAX_QUERY_CHARS, resolve_question
from tempo_kit.model.config import TempoConfig

MISSING = "no-such-video.mp4"  # decoding it would fail with a MediaError: a ConfigError proves none ran


@pytest.fixture(scope="module")
def config():
    return TempoConfig(
        compressor={"name": "qwen3_vl"},
        decoder={"name": "hf_causal_lm"},
        allocator={"name": "ata", "mode": "exact"},
        max_context=4321,
        preprocessing="qwen3_vl",
        budget=96,
    )


@pytest.fixture(scope="module")
def pipeline(tiny_tempo_dir):
    from tempo_kit.inference.api import TempoPipeline

    return TempoPipeline.from_pretrained(tiny_tempo_dir)


def test_defaults_come_from_the_model_config(config):
    question = resolve_question(config, "Who?")
    assert question.max_context == 4321 and question.budget == 96 and question.k_min == config.k_min
    assert question.allocator == {"name": "ata", "mode": "exact"}  # with its arguments
    assert question.sampling.preprocessing == "qwen3_vl" and question.compressor_query == "Who?"
    assert question.system_prompt is None and question.relevance_system_prompt is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        question.budget = 1


def test_prompt_names_map_to_their_text_once(config):
    from tempo_kit.compressors.prompts import QWEN_DEFAULT_PROMPT, STANDARD_PROMPT

    trained = resolve_question(config, "Who?", relevance_prompt="standard")
    assert trained.system_prompt == trained.relevance_system_prompt == STANDARD_PROMPT
    base = resolve_question(config, "Who?", relevance="base", relevance_prompt="qwen_default")
    assert base.system_prompt is None and base.relevance_system_prompt == QWEN_DEFAULT_PROMPT
    assert resolve_question(config, "Who?", relevance_prompt="Be brief.").system_prompt == "Be brief."
    assert base.to_dict()["relevance_prompt"] == "qwen_default"
    json.dumps(base.to_dict())  # JSON-ready


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_frame": 8}, r"unknown keyword max_frame=8 \(did you mean 'max_frames'\?\)"),
        ({"bugdet": 8}, r"did you mean 'budget'\?"),
        ({"budget": 0}, r"budget=0 must be an integer ≥ 1"),
        ({"max_context": True}, r"max_context=True must be an integer"),
        ({"max_new_tokens": 0}, r"max_new_tokens=0 must be a positive"),
        ({"allocator": "atta"}, r"allocator.*did you mean 'ata'"),
        ({"allocator": {"name": "ata", "mod": "exact"}}, r"allocator"),
        ({"reduction": "haed"}, r"reduction.*did you mean 'head'"),
        ({"relevance": "oracle"}, r"relevance='oracle'"),
        ({"relevance_prompt": ""}, r"relevance_prompt=''"),
        ({"window": 0}, r"window=0 must be a positive"),
    ],
)
def test_bad_settings_are_refused_before_decoding(pipeline, options, message):
    with pytest.raises(ConfigError, match=message):
        pipeline.answer(video=MISSING, query="Who?", **options)


def test_an_absurdly_long_query_is_refused_at_once(pipeline):
    with pytest.raises(ConfigError, match=rf"^query has 100000 characters, over the limit of {MAX_QUERY_CHARS}"):
        pipeline.answer(video=MISSING, query="x" * 100_000)
    with pytest.raises(ConfigError, match="compressor_query has"):
        pipeline.answer(video=MISSING, query="Who?", compressor_query="x" * (MAX_QUERY_CHARS + 1))


def test_the_model_max_context_is_honoured(tiny_tempo_dir, tiny_needle_benchmark):
    from tempo_kit.inference.api import TempoPipeline

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = tiny_needle_benchmark.parent / row["video"]
    full = TempoPipeline.from_pretrained(tiny_tempo_dir).answer(video=video, query=row["question"], max_new_tokens=1)
    capped = TempoPipeline.from_pretrained(tiny_tempo_dir, max_context=80)
    result = capped.answer(video=video, query=row["question"], max_new_tokens=1)
    assert result.settings["max_context"] == 80
    assert result.tokens_used < full.tokens_used  # the cap cut visual rows
    question = capped.question(row["question"], max_new_tokens=1)
    assert {k: v for k, v in result.settings.items() if k in question.to_dict()} == question.to_dict()
    records = result.segment_records()
    assert records[0]["time_tag"] == f"<{float(result.allocation.times[0]):.1f} seconds>"


@pytest.mark.parametrize(
    ("verb", "extra", "message"),
    [
        ("chat", ["--budget", "0"], "--budget 0: the budget is"),
        ("chat", ["--allocator", "atta"], "did you mean 'ata'"),
        ("chat", ["--relevance-prompt", " "], "--relevance-prompt  : must be one of"),
        ("demo", ["--budget", "-3"], "--budget -3:"),
        ("demo", ["--max-new-tokens", "0"], "--max-new-tokens"),
        ("demo", ["--window", "0"], "--window 0:"),
        ("chat", ["--max-context", "0"], "--max-context 0:"),
        ("chat", ["--reduction", "haed"], "did you mean 'head'"),
    ],
)
def test_chat_and_demo_options_are_checked_like_infer(tiny_tempo_dir, tiny_needle_benchmark, capsys, verb, extra, message):
    from tempo_kit.cli import main

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = ["--video", str(tiny_needle_benchmark.parent / row["video"])] if verb == "chat" else []
    assert main([verb, "--model", str(tiny_tempo_dir), *video, *extra]) == 2
    assert message in capsys.readouterr().err
