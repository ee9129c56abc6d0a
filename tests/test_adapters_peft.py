"""LoRA adapters written in peft's format load with ``PeftModel.from_pretrained`` and back into the kit."""

from __future__ import annotations

import json

import pytest
import torch

from tempo_kit.errors import CheckpointError
from tempo_kit.recipes import DEFAULTS
from tempo_kit.training.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapters, save_adapters
from tempo_kit.training.trainability import apply_trainability, lora_state_dict, merge_lora

MODES = {"compressor": "lora", "memory_tokens": "frozen", "projector": "frozen", "decoder": "lora"}
LORA = {part: {**DEFAULTS["lora"][part], "r": 4, "lora_alpha": 8, "lora_dropout": 0.0} for part in ("compressor", "decoder")}


def tiny_model(tiny_checkpoints):
    from tempo_kit.model import TempoModel

    return TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 4},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
        }
    )


@pytest.fixture(scope="module")
def trained(tiny_checkpoints, tmp_path_factory):
    """A model with LoRA on both parts whose adapters are not zero (as after training), saved."""
    model = tiny_model(tiny_checkpoints)
    apply_trainability(model, MODES, LORA)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: give it values so the adapter does something
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    out = tmp_path_factory.mktemp("adapters")
    save_adapters(model, MODES, LORA, out)
    return model, out


# peft (0.21) reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model in
# PeftModel: the warning is peft's, not the kit's (the kit uses `is_activation_checkpointing`)
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_loads_each_adapter_on_its_base(trained, tiny_checkpoints):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, Qwen3VLForConditionalGeneration

    model, out = trained
    for part in ("compressor", "decoder"):
        assert {p.name for p in (out / part).iterdir()} >= {ADAPTER_CONFIG, ADAPTER_WEIGHTS}
    config = json.loads((out / "decoder" / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4
    assert config["base_model_name_or_path"] == str(tiny_checkpoints["llm"])
    merged = {k: v.clone() for k, v in merge_lora(model).state_dict().items()}

    base = AutoModelForCausalLM.from_pretrained(str(tiny_checkpoints["llm"]))
    before = base.model.layers[0].self_attn.q_proj.weight.clone()
    llm = PeftModel.from_pretrained(base, str(out / "decoder")).merge_and_unload()
    for key, value in llm.state_dict().items():
        assert torch.allclose(value, merged[f"decoder.model.{key}"], atol=1e-6), key
    assert not torch.allclose(llm.model.layers[0].self_attn.q_proj.weight, before)  # the adapter acted

    svlm = Qwen3VLForConditionalGeneration.from_pretrained(str(tiny_checkpoints["svlm"]))
    svlm = PeftModel.from_pretrained(svlm, str(out / "compressor")).merge_and_unload()
    changed = 0
    for key, value in svlm.model.state_dict().items():
        base = merged[f"compressor.svlm.{key}"]
        assert torch.allclose(value, base, atol=1e-6), key
        changed += "language_model" in key and key.endswith("q_proj.weight")
    assert changed == svlm.config.text_config.num_hidden_layers  # every q_proj of the LM took its adapter
    assert not any("lora" in k for k in svlm.state_dict())


def test_kit_loads_its_adapters_back(trained, tiny_checkpoints):
    model, out = trained
    fresh = tiny_model(tiny_checkpoints)
    assert load_adapters(fresh, out) == ["compressor", "decoder"]
    theirs = lora_state_dict(fresh)
    from safetensors.torch import load_file

    saved = load_file(str(out / "decoder" / ADAPTER_WEIGHTS))
    assert len(saved) == sum(1 for k in theirs if k.startswith("decoder."))
    for key, value in saved.items():
        kit_key = "decoder." + key.replace("base_model.model.", "model.", 1).replace(".weight", ".default.weight")
        assert torch.equal(theirs[kit_key], value), key


def test_load_adapters_names_a_wrong_folder(tiny_checkpoints, tmp_path):
    with pytest.raises(CheckpointError, match="holds no adapters"):
        load_adapters(tiny_model(tiny_checkpoints), tmp_path)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_auto_peft_loads_the_decoder_adapter_from_another_folder(trained, tiny_checkpoints, tmp_path, monkeypatch):
    from peft import AutoPeftModelForCausalLM

    model, out = trained
    config = json.loads((out / "decoder" / ADAPTER_CONFIG).read_text())
    assert config["task_type"] == "CAUSAL_LM"
    monkeypatch.chdir(tmp_path)  # the base path does not depend on where the adapter is loaded from
    llm = AutoPeftModelForCausalLM.from_pretrained(str(out / "decoder")).merge_and_unload()
    merged = merge_lora(model).state_dict()
    for key, value in llm.state_dict().items():
        assert torch.allclose(value, merged[f"decoder.model.{key}"], atol=1e-6), key


def test_adapter_base_path_is_absolute(tiny_checkpoints, tmp_path, monkeypatch):
    import os

    from tempo_kit.training.adapters import base_model_path

    monkeypatch.chdir(tiny_checkpoints["llm"].parent)
    relative = os.path.relpath(tiny_checkpoints["llm"])
    assert base_model_path(relative) == str(tiny_checkpoints["llm"].resolve())
    assert base_model_path("Qwen/Qwen3-4B") == "Qwen/Qwen3-4B"
