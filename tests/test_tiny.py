"""Tiny checkpoints: Hugging Face layout, loadable like real ones, deterministic, CLI verb."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from tempo_kit.cli import main

SVLM_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "chat_template.json",
}
LLM_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


def test_files_in_hf_layout(tiny_checkpoints):
    assert {p.name for p in tiny_checkpoints["svlm"].iterdir()} >= SVLM_FILES
    assert {p.name for p in tiny_checkpoints["llm"].iterdir()} >= LLM_FILES
    config = json.loads((tiny_checkpoints["svlm"] / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    assert config["architectures"] == ["Qwen3VLForConditionalGeneration"]
    assert config["tie_word_embeddings"] is True
    keys = load_file(tiny_checkpoints["svlm"] / "model.safetensors").keys()
    assert any(k.startswith("model.visual.") for k in keys)
    assert any(k.startswith("model.language_model.") for k in keys)
    assert "lm_head.weight" not in keys  # tied, as in Qwen3-VL-2B


def test_svlm_config_matches_real_architecture(tiny_checkpoints):
    from transformers import AutoTokenizer, Qwen3VLConfig

    config = Qwen3VLConfig.from_pretrained(tiny_checkpoints["svlm"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints["svlm"])
    text, vision = config.text_config, config.vision_config
    assert text.vocab_size == len(tokenizer)
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert vision.out_hidden_size == text.hidden_size
    assert (vision.patch_size, vision.temporal_patch_size, vision.spatial_merge_size) == (16, 2, 2)
    assert max(vision.deepstack_visual_indexes) < vision.depth
    rope = text.rope_parameters
    assert rope["mrope_interleaved"] is True
    assert sum(rope["mrope_section"]) == text.head_dim // 2
    assert rope["rope_theta"] == 5e6
    assert int(vision.num_position_embeddings**0.5) ** 2 == vision.num_position_embeddings


def test_processor_configs_carry_real_values(tiny_checkpoints):
    from transformers import AutoImageProcessor

    image = AutoImageProcessor.from_pretrained(tiny_checkpoints["svlm"])
    assert (image.patch_size, image.temporal_patch_size, image.merge_size) == (16, 2, 2)
    assert list(image.image_mean) == [0.5] * 3 and list(image.image_std) == [0.5] * 3
    video = json.loads((tiny_checkpoints["svlm"] / "video_preprocessor_config.json").read_text())
    assert video["size"] == {"longest_edge": 25165824, "shortest_edge": 4096}
    template = json.loads((tiny_checkpoints["svlm"] / "chat_template.json").read_text())["chat_template"]
    assert "<|video_pad|>" in template


def test_kit_reads_the_processor_configs_as_hf_does(tiny_checkpoints):
    """The settings the compressor patches frames with are those HF's own Qwen3-VL processors load
    from the checkpoint (both classes load without torchvision; only their resize needs it)."""
    from transformers import AutoImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    from tempo_kit.compressors.checkpoint import patch_configs

    video, image = patch_configs(tiny_checkpoints["svlm"])
    for ours, hf in ((video, Qwen3VLVideoProcessor.from_pretrained(tiny_checkpoints["svlm"])),
                     (image, AutoImageProcessor.from_pretrained(tiny_checkpoints["svlm"]))):  # fmt: skip
        assert (ours.patch_size, ours.temporal_patch_size, ours.merge_size) == (
            hf.patch_size, hf.temporal_patch_size, hf.merge_size,
        )  # fmt: skip
        assert (ours.min_pixels, ours.max_pixels) == (hf.size["shortest_edge"], hf.size["longest_edge"])
        assert tuple(ours.image_mean) == tuple(hf.image_mean) and tuple(ours.image_std) == tuple(hf.image_std)
        assert ours.rescale_factor == hf.rescale_factor
    assert (video.min_pixels, video.max_pixels) == (4096, 25165824)  # differs from the image rule's


def test_from_pretrained_loads_both_and_runs(tiny_checkpoints):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3VLForConditionalGeneration

    svlm = Qwen3VLForConditionalGeneration.from_pretrained(tiny_checkpoints["svlm"]).eval()
    llm = AutoModelForCausalLM.from_pretrained(tiny_checkpoints["llm"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints["llm"])
    assert svlm.lm_head.weight.data_ptr() == svlm.model.language_model.embed_tokens.weight.data_ptr()
    assert llm.lm_head.weight.data_ptr() == llm.model.embed_tokens.weight.data_ptr()
    assert llm.config.vocab_size == len(tokenizer)
    assert llm.config.hidden_size != svlm.config.text_config.hidden_size  # projector maps between them
    ids = tokenizer("Yes No", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert llm(ids).logits.shape == (1, ids.shape[1], len(tokenizer))
        assert svlm(input_ids=ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_deterministic_in_seed(tmp_path, tiny_checkpoints):
    from tempo_kit.tiny import make_tiny

    again = make_tiny(tmp_path / "again", seed=0)
    other = make_tiny(tmp_path / "other", seed=1)
    for name in ("svlm", "llm"):
        first = (tiny_checkpoints[name] / "model.safetensors").read_bytes()
        assert (again[name] / "model.safetensors").read_bytes() == first
        assert (other[name] / "model.safetensors").read_bytes() != first


def test_cli_verb(tmp_path, capsys):
    assert main(["make-tiny", str(tmp_path / "cli"), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "svlm:" in out and "llm:" in out
    assert (tmp_path / "cli" / "svlm" / "model.safetensors").is_file()
    assert (tmp_path / "cli" / "llm" / "config.json").is_file()
