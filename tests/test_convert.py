"""Released Tempo layout (FACTS §6) ↔ kit: key mapping, files, and full conversions on tiny models.

The released-layout checkpoint is built here independently of the converter, straight from the
FACTS §6 description: the tiny Qwen3's keys as they are, the tiny Qwen3-VL's keys (LM head
removed) under ``model.vision_tower_aux_list.0.vlm.``, ``model.mm_projector.*`` and the memory
tokens ``[1, k, d]`` as ``model.vision_tower_aux_list.0.compression_tokens``.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tempo_kit.checkpoints import released as layout
from tempo_kit.checkpoints.files import load_state_dict, save_state_dict
from tempo_kit.errors import CheckpointError

K_MAX = 8


def released_state_dict(tiny_checkpoints, seed=0):
    """A state dict in exactly the released layout, built from the tiny HF checkpoints."""
    from transformers import AutoModelForCausalLM, Qwen3VLForConditionalGeneration

    llm = AutoModelForCausalLM.from_pretrained(str(tiny_checkpoints["llm"]))
    svlm = Qwen3VLForConditionalGeneration.from_pretrained(str(tiny_checkpoints["svlm"]))
    generator = torch.Generator().manual_seed(seed)
    d_svlm, d_llm = svlm.config.text_config.hidden_size, llm.config.hidden_size
    state = {k: v.detach().clone() for k, v in llm.state_dict().items()}
    for key, value in svlm.state_dict().items():
        if not key.startswith("lm_head."):
            state["model.vision_tower_aux_list.0.vlm." + key] = value.detach().clone()
    state["model.mm_projector.weight"] = torch.randn(d_llm, d_svlm, generator=generator)
    state["model.mm_projector.bias"] = torch.randn(d_llm, generator=generator)
    state["model.vision_tower_aux_list.0.compression_tokens"] = torch.randn(
        1, K_MAX, d_svlm, generator=generator
    )
    config = json.loads((tiny_checkpoints["llm"] / "config.json").read_text())
    config.update(
        model_type="tempo_qwen",
        architectures=["TempoQwenForCausalLM"],
        mm_vision_tower_aux_list=["Qwen/Qwen3-VL-2B-Instruct"],
        num_compression_tokens=K_MAX,
        mm_projector_type="linear",
        mm_hidden_size=d_svlm,
        visual_token_budget=256,
        tokenizer_model_max_length=4096,
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
    )
    return state, config


def write_released(folder, tiny_checkpoints, max_shard_bytes=200_000):
    """Write the released layout to ``folder`` (sharded safetensors + index, config, tokenizer)."""
    state, config = released_state_dict(tiny_checkpoints)
    save_state_dict(state, folder, max_shard_bytes=max_shard_bytes, progress=False)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny_checkpoints["llm"] / name).exists():
            shutil.copy(tiny_checkpoints["llm"] / name, folder / name)
    return state, config


def test_key_mapping_round_trip_is_exact(tiny_checkpoints):
    state, _ = released_state_dict(tiny_checkpoints)
    kit, report = layout.released_to_kit(state)
    assert kit["compressor.memory_tokens"].shape == (K_MAX, 64)
    assert "compressor.svlm.visual.patch_embed.proj.weight" in kit
    assert "compressor.svlm.language_model.layers.0.mlp.up_proj.weight" in kit
    assert "decoder.model.model.layers.1.self_attn.q_proj.weight" in kit
    assert torch.equal(kit["projector.proj.weight"], state["model.mm_projector.weight"])
    assert report.total == len(state)
    back, _ = layout.kit_to_released(kit)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_unmapped_key_and_bad_memory_shape_are_named(tiny_checkpoints):
    state, _ = released_state_dict(tiny_checkpoints)
    state["model.vision_tower.some_extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="model.vision_tower.some_extra.weight"):
        layout.released_to_kit(state)
    del state["model.vision_tower.some_extra.weight"]
    state["model.vision_tower_aux_list.0.compression_tokens"] = torch.zeros(K_MAX, 64)
    with pytest.raises(CheckpointError, match=r"shape \[1, num_compression_tokens, d_svlm\], got \[8, 64\]"):
        layout.released_to_kit(state)
    with pytest.raises(CheckpointError, match="decoder.extra"):
        layout.kit_to_released({"decoder.extra": torch.zeros(1)})


def test_mlp_projector_keys_follow_llava_indices():
    kit, _ = layout.released_to_kit(
        {
            "model.mm_projector.0.weight": torch.zeros(2, 2),
            "model.mm_projector.2.bias": torch.zeros(2),
            "model.vision_tower_aux_list.0.compression_tokens": torch.zeros(1, 2, 2),
        },
        projector="mlp2x_gelu",
    )
    assert set(kit) == {"projector.layers.0.weight", "projector.layers.2.bias", "compressor.memory_tokens"}


def test_config_checks_and_llm_config(tiny_checkpoints):
    _, config = released_state_dict(tiny_checkpoints)
    layout.check_released_config(config, "cfg")
    llm = layout.llm_config_from_released(config)
    assert llm["model_type"] == "qwen3" and "num_compression_tokens" not in llm
    with pytest.raises(CheckpointError, match="model_type is 'qwen3', expected 'tempo_qwen'"):
        layout.check_released_config(llm, "cfg")
    with pytest.raises(CheckpointError, match="mm_use_im_start_end=true"):
        layout.check_released_config({**config, "mm_use_im_start_end": True}, "cfg")


def test_relevance_direction_is_yes_minus_no(tiny_tokenizer):
    head = torch.randn(len(tiny_tokenizer), 8, dtype=torch.bfloat16)
    yes = tiny_tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    no = tiny_tokenizer("No", add_special_tokens=False)["input_ids"][0]
    direction = layout.relevance_direction(head, tiny_tokenizer)
    assert direction.dtype == torch.float32
    assert torch.equal(direction, head[yes].float() - head[no].float())
    with pytest.raises(CheckpointError, match="'Yes please'"):
        layout.relevance_direction(head, tiny_tokenizer, yes="Yes please")


def test_sharded_files_round_trip(tmp_path, tiny_checkpoints):
    state, _ = write_released(tmp_path / "released", tiny_checkpoints)
    assert (tmp_path / "released" / "model.safetensors.index.json").is_file()
    loaded = load_state_dict(tmp_path / "released", progress=False)
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
