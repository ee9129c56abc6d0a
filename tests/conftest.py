"""Shared fixtures. Tiny checkpoints are built once per session on disk and loaded like real ones."""

from __future__ import annotations

import os
import signal
import subprocess
import time

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
def tiny_svlm(tiny_checkpoints, tiny_tokenizer, tmp_path_factory):
    """``tiny_svlm(family)``: the folder of a tiny checkpoint of that compressor family, written
    once per session by its writer in ``tempo_kit.tiny.svlm_families`` (qwen3_vl: the shared one)."""
    from tempo_kit.tiny.svlm_families import SVLM_WRITERS

    written = {"qwen3_vl": tiny_checkpoints["svlm"]}

    def folder(family: str):
        if family not in written:
            written[family] = SVLM_WRITERS[family](tmp_path_factory.mktemp(f"tiny_{family}"), tiny_tokenizer)
        return written[family]

    return folder


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


@pytest.fixture(scope="session")
def letter_model(tiny_checkpoints, tmp_path_factory):
    """A tiny TempoModel whose LLM answers with option letters: its LM head is untied and zero
    except the rows of "A"–"D", so greedy decoding picks a letter that depends on the input."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tempo_kit.model import TempoModel

    root = tmp_path_factory.mktemp("letter_model")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoints["llm"]))
    llm = AutoModelForCausalLM.from_pretrained(str(tiny_checkpoints["llm"]))
    llm.config.tie_word_embeddings = False
    head = torch.zeros_like(llm.get_input_embeddings().weight)
    generator = torch.Generator().manual_seed(3)
    for letter in "ABCD":
        (token,) = tokenizer(letter, add_special_tokens=False)["input_ids"]
        head[token] = torch.randn(head.shape[1], generator=generator) * 4
    llm.lm_head.weight = torch.nn.Parameter(head)
    llm.save_pretrained(str(root / "llm"))
    tokenizer.save_pretrained(str(root / "llm"))
    torch.manual_seed(0)  # the memory tokens' random init, so predictions do not depend on test order
    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(root / "llm")},
            "budget": 64,
        }
    )
    return model.save_pretrained(root / "tempo")


@pytest.fixture
def kill_once_written():
    """``kill(command, path, lines, seconds, env=None)``: start ``command`` in its own process group
    and SIGKILL the group once ``path`` holds ``lines`` lines (a crash in the middle of a run)."""

    def kill(command, path, lines: int, seconds: float, env=None) -> None:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and process.poll() is None:
                if path.exists() and path.read_bytes().count(b"\n") >= lines:
                    break
                time.sleep(0.02)
            assert process.poll() is None, "the run ended before it could be killed"
            os.killpg(process.pid, signal.SIGKILL)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    return kill
