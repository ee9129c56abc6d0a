"""Released Tempo layout (compatibility §6) ↔ kit: key mapping, files, and full conversions on tiny models.

The released-layout checkpoint is built here independently of the converter, straight from the
compatibility §6 description: the tiny Qwen3's keys as they are, the tiny Qwen3-VL's keys (LM head
removed) under ``model.vision_tower_aux_list.0.vlm.``, ``model.mm_projector.*`` and the memory
tokens ``[1, k, d]`` as ``model.vision_tower_aux_list.0.compression_tokens``.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tempo_kit.checkpoints import released as layout
from tempo_kit.errors import CheckpointError
from tempo_kit.hf_folder import load_state_dict, save_state_dict

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


# --- full conversions through TempoModel --------------------------------------------------------


@pytest.fixture(scope="module")
def released_dir(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("released")
    state, config = write_released(folder, tiny_checkpoints)
    return folder, state, config


@pytest.fixture(scope="module")
def converted(released_dir, tiny_checkpoints, tmp_path_factory):
    from tempo_kit.checkpoints.convert import convert_released_to_kit

    folder, _, _ = released_dir
    out = tmp_path_factory.mktemp("kit") / "tempo"
    report = convert_released_to_kit(folder, tiny_checkpoints["svlm"], out, progress=False)
    return out, report


def test_released_to_kit_maps_every_tensor_and_bakes_the_relevance_direction(
    released_dir, converted, tiny_checkpoints
):
    from transformers import AutoTokenizer

    from tempo_kit.hf_folder import read_tensor
    from tempo_kit.model import TempoModel

    _, state, config = released_dir
    out, report = converted
    assert sum(report.groups.values()) == len(state) + 1  # + the relevance direction
    assert report.shapes_checked == len(state) + 1
    model = TempoModel.from_pretrained(out)
    kit_state = model.state_dict()
    expected, _ = layout.released_to_kit(state)
    for key, value in expected.items():
        assert torch.equal(kit_state[key], value), key
    head = read_tensor(tiny_checkpoints["svlm"], "lm_head.weight", "model.language_model.embed_tokens.weight")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoints["svlm"]))
    assert torch.equal(model.compressor.relevance_direction, layout.relevance_direction(head, tokenizer))
    assert model.config.budget == config["visual_token_budget"]
    # the released training context; the inference cap is the caller's (compatibility §4: 16384 at infer)
    assert model.config.train_max_context == config["tokenizer_model_max_length"]
    assert model.config.max_context == 16384
    assert model.compressor.k_max == K_MAX


def test_round_trip_released_kit_released_is_key_and_value_exact(released_dir, converted, tmp_path):
    from tempo_kit.checkpoints.convert import convert_kit_to_released, equal_state_dicts

    _, state, config = released_dir
    out, _ = converted
    back = tmp_path / "back"
    report = convert_kit_to_released(out, back, progress=False)
    assert sum(report.groups.values()) == len(state)
    assert equal_state_dicts(state, load_state_dict(back, progress=False)) == []
    assert json.loads((back / "config.json").read_text()) == config


def test_outputs_equal_before_and_after_conversion(
    tiny_tempo_dir, tiny_needle_benchmark, tiny_checkpoints, tmp_path
):
    """A kit model → released layout → kit model answers and allocates exactly as before."""
    from tempo_kit.checkpoints.convert import convert_kit_to_released, convert_released_to_kit
    from tempo_kit.inference.api import TempoPipeline

    released = tmp_path / "released"
    convert_kit_to_released(tiny_tempo_dir, released, progress=False)
    config = json.loads((released / "config.json").read_text())
    assert config["model_type"] == "tempo_qwen" and config["mm_vision_tower_aux_list"] == [
        "Qwen/Qwen3-VL-2B-Instruct"
    ]
    convert_released_to_kit(released, tiny_checkpoints["svlm"], tmp_path / "kit", progress=False)
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = str(tiny_needle_benchmark.parent / row["video"])
    before = TempoPipeline.from_pretrained(tiny_tempo_dir).answer(
        video=video, query=row["question"], max_new_tokens=6
    )
    after = TempoPipeline.from_pretrained(tmp_path / "kit").answer(
        video=video, query=row["question"], max_new_tokens=6
    )
    assert after.answer == before.answer
    assert torch.equal(after.allocation.counts, before.allocation.counts)
    assert torch.equal(after.allocation.relevance, before.allocation.relevance)


def test_conversion_errors_name_the_problem(released_dir, tiny_checkpoints, tmp_path):
    from tempo_kit.checkpoints.convert import convert_released_to_kit

    folder, state, config = released_dir
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "config.json").write_text(json.dumps({**config, "mm_hidden_size": 2048}))
    with pytest.raises(CheckpointError, match="mm_hidden_size=2048 but the base SVLM .* has hidden size 64"):
        convert_released_to_kit(bad, tiny_checkpoints["svlm"], tmp_path / "out1", progress=False)
    (bad / "config.json").write_text(json.dumps(config))
    wrong = dict(state)
    key = "model.vision_tower_aux_list.0.vlm.model.language_model.norm.weight"
    wrong[key] = torch.ones(65)
    for file in bad.glob("*.safetensors"):
        file.unlink()
    (bad / "model.safetensors.index.json").unlink()
    save_state_dict(wrong, bad, progress=False)
    with pytest.raises(
        CheckpointError,
        match=r"compressor.svlm.language_model.norm.weight: checkpoint \[65\] vs model \[64\]",
    ):
        convert_released_to_kit(bad, tiny_checkpoints["svlm"], tmp_path / "out2", progress=False)


def test_convert_cli(released_dir, tiny_checkpoints, tmp_path, capsys):
    from tempo_kit.cli import main

    folder, state, _ = released_dir
    assert (
        main(
            [
                "convert",
                "to-kit",
                str(folder),
                str(tmp_path / "kit"),
                "--svlm",
                str(tiny_checkpoints["svlm"]),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "none left over" in text and f"shapes checked against the model: {len(state) + 1}" in text
    assert (
        main(
            [
                "convert",
                "to-released",
                str(tmp_path / "kit"),
                str(tmp_path / "back"),
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert sum(report["groups"].values()) == len(state)
    assert main(["convert", "to-kit", str(folder), str(tmp_path / "x")]) == 2
    assert "needs --svlm" in capsys.readouterr().err


def test_tied_head_saved_once_round_trips(tiny_checkpoints, tmp_path):
    """Hugging Face saves a tied LM head once (as embed_tokens); such a checkpoint converts back as it was."""
    from tempo_kit.checkpoints.convert import (
        convert_kit_to_released,
        convert_released_to_kit,
        equal_state_dicts,
    )
    from tempo_kit.model import TempoModel

    folder = tmp_path / "released"
    state, _ = write_released(folder, tiny_checkpoints)
    del state["lm_head.weight"]
    for file in folder.glob("model*.safetensors*"):
        file.unlink()
    save_state_dict(state, folder, progress=False)
    report = convert_released_to_kit(folder, tiny_checkpoints["svlm"], tmp_path / "kit", progress=False)
    assert any("tie_word_embeddings=true" in note for note in report.notes)
    model = TempoModel.from_pretrained(tmp_path / "kit")
    assert torch.equal(model.decoder.model.lm_head.weight, state["model.embed_tokens.weight"])
    convert_kit_to_released(tmp_path / "kit", tmp_path / "back", progress=False)
    assert equal_state_dicts(state, load_state_dict(tmp_path / "back", progress=False)) == []


def test_stage_checkpoint_without_llm_weights_takes_the_base_llm(tiny_checkpoints, tmp_path):
    from tempo_kit.checkpoints.convert import convert_released_to_kit
    from tempo_kit.model import TempoModel

    folder = tmp_path / "stage0"
    state, _ = write_released(folder, tiny_checkpoints)
    partial = {
        k: v for k, v in state.items() if k.startswith(("model.mm_projector", "model.vision_tower_aux_list"))
    }
    for file in folder.glob("model*.safetensors*"):
        file.unlink()
    save_state_dict(partial, folder, progress=False)
    with pytest.raises(CheckpointError, match="holds no LLM weights .* pass the base LLM folder \\(--llm\\)"):
        convert_released_to_kit(folder, tiny_checkpoints["svlm"], tmp_path / "x", progress=False)
    report = convert_released_to_kit(
        folder, tiny_checkpoints["svlm"], tmp_path / "kit", llm_dir=tiny_checkpoints["llm"], progress=False
    )
    assert any("LLM weights taken from the base LLM" in note for note in report.notes)
    model = TempoModel.from_pretrained(tmp_path / "kit")
    assert torch.equal(model.projector.proj.weight, state["model.mm_projector.weight"])
    assert torch.equal(model.decoder.model.model.norm.weight, state["model.norm.weight"])


KILLED_WHILE_SAVING = """
import os, signal, sys
import tempo_kit.manifest
tempo_kit.manifest.write_manifest = lambda folder: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-save
from tempo_kit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_conversion_killed_midway_leaves_nothing_a_rerun_does_not_remove(released_dir, tiny_checkpoints, tmp_path):
    import subprocess
    import sys

    from tempo_kit.cli import main

    folder, _, _ = released_dir
    out = tmp_path / "kit"
    argv = ["convert", "to-kit", str(folder), str(out), "--svlm", str(tiny_checkpoints["svlm"]), "--no-progress"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, *argv], capture_output=True, timeout=300)
    assert killed.returncode == -9
    lock = f".{out.name}.tempo-kit.lock"
    left = {p.name for p in tmp_path.iterdir()} - {lock}
    assert left and not out.exists()  # the weights half-written beside the output, and the LLM's files
    assert main(argv) == 0
    assert {p.name for p in tmp_path.iterdir()} == {out.name, lock}
