"""Decoder families beyond Qwen3: each tiny checkpoint is its family, its prompt is its own chat
template, generation stops at its end of turn, LoRA finds its projections; bad input is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tempo_kit.decoders import HFCausalLM
from tempo_kit.decoders.families import BY_NAME, DECODER_FAMILIES
from tempo_kit.errors import ConfigError
from tempo_kit.model.chat_formats import CHATML, chat_format_of, stop_token_ids
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.tiny.llm_families import LLM_WRITERS
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID

#: make-tiny family → (decoder family, chat format, tied head)
EXPECTED = {
    "qwen3": ("qwen3", "chatml", True),
    "qwen2": ("qwen2", "chatml", True),
    "llama": ("llama", "llama3", False),
    "smollm2": ("llama", "chatml", True),
    "gemma3": ("gemma3", "gemma", True),
    "mistral": ("mistral", "mistral", False),
    "phi3": ("phi3", "phi3", False),
}
CONVERSATION = [Turn("user", "What colour is the circle?"), Turn("assistant", "Red"), Turn("user", "And the square?")]


@pytest.fixture(scope="module")
def decoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    return {name: HFCausalLM(writer(root / name, None, seed=1)) for name, writer in LLM_WRITERS.items()}


def test_every_family_has_a_tiny_checkpoint_and_every_tiny_checkpoint_a_family():
    assert set(LLM_WRITERS) == set(EXPECTED)
    assert {family for family, _, _ in EXPECTED.values()} == {f.name for f in DECODER_FAMILIES}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tiny_checkpoint_is_its_family(name, decoders):
    decoder = decoders[name]
    family, chat, tied = EXPECTED[name]
    assert decoder.family is BY_NAME[family] and decoder.chat_format.name == chat
    assert decoder.model.config.tie_word_embeddings is tied
    head, embeddings = decoder.model.get_output_embeddings().weight, decoder.model.get_input_embeddings().weight
    assert (head is embeddings) is tied
    assert {c.__name__ for c in decoder.decoder_layer_classes} == {decoder.family.block_class}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_prompt_is_the_familys_own_chat_template(name, decoders):
    tokenizer = decoders[name].tokenizer
    ids, labels = encode_decoder_prompt(tokenizer, CONVERSATION, has_visual=False, add_generation_prompt=True)
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    messages += [{"role": t.role, "content": t.text} for t in CONVERSATION]
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    form = chat_format_of(tokenizer)
    assert tokenizer.decode(ids[labels != IGNORE_INDEX]) == form.reply_prefix + "Red" + form.end_of_turn


@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("generation", [False, True], ids=["training", "generation"])
def test_prompt_ids_are_the_tokenizers_own_chat_template_ids(name, generation, decoders):
    """Token for token, for a training sample (ending in a reply) and a generation prompt: Llama 3's
    date preamble, Mistral's system text in the last user turn only (none in a training sample)."""
    tokenizer = decoders[name].tokenizer
    turns = CONVERSATION if generation else CONVERSATION[:2]
    ids, _ = encode_decoder_prompt(tokenizer, turns, has_visual=False, add_generation_prompt=generation)
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    messages += [{"role": t.role, "content": t.text} for t in turns]
    expected = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation, return_dict=True)
    assert ids.tolist() == list(expected["input_ids"])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_visual_placeholder_opens_the_first_user_turn(name, decoders):
    tokenizer = decoders[name].tokenizer
    ids, _ = encode_decoder_prompt(tokenizer, CONVERSATION[:1], has_visual=True, add_generation_prompt=True)
    (where,) = (ids == VISUAL_PLACEHOLDER_ID).nonzero()[0].tolist()
    form = chat_format_of(tokenizer)
    before = tokenizer.decode(ids[:where])
    assert before.endswith(form.user_open + ("" if form.system else "You are a helpful assistant.\n\n"))
    assert tokenizer.decode(ids[where + 1 :]).startswith("\nWhat colour")


@pytest.mark.parametrize("name", ["llama", "gemma3", "mistral", "phi3"])
def test_generation_stops_at_the_end_of_turn_even_if_the_checkpoint_names_only_eos(name, decoders):
    decoder = decoders[name]
    end = decoder.tokenizer.convert_tokens_to_ids(decoder.chat_format.end_of_turn)
    assert end in stop_token_ids(decoder.tokenizer)
    if name == "llama":  # the base checkpoint's generation config stops at <|end_of_text|> only
        assert end not in decoder.model.generation_config.eos_token_id
    bonus = torch.zeros(len(decoder.tokenizer))
    bonus[end] = 1e4  # the LM head now says the end-of-turn token first
    hook = decoder.model.get_output_embeddings().register_forward_hook(lambda m, a, out: out + bonus)
    ids, _ = encode_decoder_prompt(decoder.tokenizer, CONVERSATION[:1], has_visual=False, add_generation_prompt=True)
    try:
        out = decoder.generate(decoder.embed(ids[None]), torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=5)
    finally:
        hook.remove()
    assert out.tolist() == [[end]]


def test_phi3_lora_targets_its_fused_projections_and_a_split_list_is_refused(decoders):
    from tempo_kit.training.trainability import inject_lora

    phi3 = decoders["phi3"]
    assert phi3.lora_target_modules == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    split = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    with pytest.raises(ConfigError, match=r"lora.decoder.target_modules: .* no module named \['q_proj'.*target_modules: family"):
        inject_lora(phi3, {"module": "model", "r": 2, "target_modules": split}, "lora.decoder")


def test_unsupported_architecture_names_the_supported_families(decoders, tmp_path):
    folder = tmp_path / "gpt2"
    decoders["qwen3"].tokenizer.save_pretrained(str(folder))
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ConfigError, match=r"model_type 'gpt2' is not a supported decoder family; supported: qwen3 \(qwen3\), qwen2 .* phi3 \(phi3\)\. To add one"):
        HFCausalLM(folder)


def test_tokenizer_without_a_chat_format_is_refused(decoders):
    from tempo_kit.tiny.tokenizer import build_family_tokenizer

    plain = build_family_tokenizer(["<|eos|>"], "", eos="<|eos|>")
    with pytest.raises(ConfigError, match="has none of the chat formats the kit writes"):
        chat_format_of(plain)
    assert chat_format_of(decoders["qwen3"].tokenizer) is CHATML


def test_make_tiny_writes_the_asked_pair_without_progress_bars_in_a_log(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tempo_kit.cli", "make-tiny", str(tmp_path / "t"), "--llm", "mistral"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Writing model shards" not in result.stdout + result.stderr and "%|" not in result.stderr
    assert result.stdout.splitlines() == [f"svlm: {tmp_path / 't' / 'svlm'}", f"llm: {tmp_path / 't' / 'llm'}"]
    assert json.loads((tmp_path / "t" / "llm" / "config.json").read_text())["model_type"] == "mistral"
    assert json.loads((tmp_path / "t" / "svlm" / "config.json").read_text())["model_type"] == "qwen3_vl"
    bad = subprocess.run([*command[:-1], "falcon"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--llm 'falcon': no tiny llm of that family; choose one of qwen3, qwen2, llama" in bad.stderr
