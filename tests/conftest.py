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
