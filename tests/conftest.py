"""Shared fixtures. Tiny checkpoints are built once per session on disk and loaded like real ones."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    from tempo_kit.tiny.tokenizer import save_tokenizer

    out = tmp_path_factory.mktemp("tiny_tokenizer")
    save_tokenizer(out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """``{"svlm": Path, "llm": Path}``: tiny Qwen3-VL and Qwen3 checkpoints in the Hugging Face layout."""
    from tempo_kit.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny_checkpoints"), seed=0)


@pytest.fixture(scope="session")
def tiny_tempo_dir(tiny_checkpoints, tmp_path_factory):
    """A kit-format TempoModel folder built from the tiny checkpoints (k_max 16, budget 64)."""
    from tempo_kit.model import TempoModel

    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
            "budget": 64,
        }
    )
    return model.save_pretrained(tmp_path_factory.mktemp("tiny_tempo"))


@pytest.fixture(scope="session")
def tiny_needle_benchmark(tmp_path_factory):
    """A synthetic multiple-choice benchmark: 4 short needle videos and their annotation JSONL."""
    from tempo_kit.data.synthetic import make_needle_dataset

    return make_needle_dataset(
        tmp_path_factory.mktemp("needle_bench"), num_videos=4, split="test", duration=12.0,
        question_types=("mc",), seed=0,
    )
