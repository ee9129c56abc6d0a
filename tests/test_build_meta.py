"""Components built from their configs alone (the meta device, for FSDP and fast construction),
weights loaded afterwards; and the one copy of the rules every loader shares: dtype names,
projector names, local-checkpoint checks."""

from __future__ import annotations

import shutil

import pytest
import torch

from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.model import TempoModel, inference_batch


def config(ckpt, **overrides):
    cfg = {
        "compressor": {"name": "qwen3_vl", "pretrained": str(ckpt["svlm"]), "k_max": 8},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(ckpt["llm"])},
        "budget": 20,
    }
    return {**cfg, **overrides}


@pytest.fixture
def damaged_copies(tiny_checkpoints, tmp_path):
    """Copies of the tiny checkpoints whose weight files hold garbage: configs and tokenizers intact."""
    copies = {name: shutil.copytree(path, tmp_path / name) for name, path in tiny_checkpoints.items()}
    for path in copies.values():
        (path / "model.safetensors").write_bytes(b"\x00not a safetensors file")
    return copies


def test_building_without_weights_opens_no_weight_file(damaged_copies):
    model = TempoModel.from_config(config(damaged_copies), load_weights=False)
    assert all(t.is_meta for t in (*model.parameters(), *model.buffers()))
    assert model.compressor.hidden_size == 64 and model.decoder.hidden_size == 48
    assert model.projector.proj.weight.shape == (48, 64)
    with torch.device("meta"):  # what an FSDP configure_model does
        again = TempoModel.from_config(config(damaged_copies))
    assert again.decoder.model.lm_head.weight is again.decoder.model.model.embed_tokens.weight  # still tied
    with pytest.raises(CheckpointError, match=r"svlm/model.safetensors cannot be read \(.*\): it is truncated or damaged"):
        model.load_initial_weights()
    (damaged_copies["svlm"] / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"svlm holds no weights \(model.safetensors"):
        TempoModel.from_config(config(damaged_copies))


def test_meta_build_then_load_equals_a_direct_build(tiny_checkpoints):
    torch.manual_seed(0)
    direct = TempoModel.from_config(config(tiny_checkpoints)).eval()
    torch.manual_seed(0)
    meta = TempoModel.from_config(config(tiny_checkpoints), load_weights=False)
    initial = meta.initial_state_dict()  # what FSDP rank 0 broadcasts into the shards
    assert all(t.device.type == "cpu" for t in initial.values())
    assert initial["decoder.model.lm_head.weight"] is initial["decoder.model.model.embed_tokens.weight"]
    meta.load_initial_weights(initial).eval()
    for key, value in direct.state_dict().items():
        assert torch.equal(value, meta.state_dict()[key]), key
    for (name, a), (_, b) in zip(direct.named_buffers(), meta.named_buffers()):
        assert torch.equal(a, b), name  # rotary frequencies are recomputed, not left uninitialised
    assert meta.decoder.model.lm_head.weight is meta.decoder.model.model.embed_tokens.weight
    from tempo_kit.video import make_segments

    g = torch.Generator().manual_seed(2)
    video = make_segments(torch.randint(0, 256, (8, 64, 96, 3), generator=g, dtype=torch.uint8), 4)
    batch = inference_batch(direct.tokenizer, [video], ["What happens?"])
    a, b = direct.generate(batch, max_new_tokens=3), meta.generate(batch, max_new_tokens=3)
    assert torch.equal(a.token_ids, b.token_ids)
    torch.testing.assert_close(a.allocations[0].relevance, b.allocations[0].relevance, rtol=0, atol=0)


def test_a_saved_model_builds_on_meta_and_loads_its_own_folder(tiny_tempo_dir):
    loaded = TempoModel.from_pretrained(tiny_tempo_dir)
    meta = TempoModel.from_pretrained(tiny_tempo_dir, load_weights=False)
    assert meta.saved_at == tiny_tempo_dir and all(p.is_meta for p in meta.parameters())
    state = meta.initial_state_dict()
    assert set(state) == set(loaded.state_dict())
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("name", ["bf16", "bfloat16", "torch.bfloat16", torch.bfloat16])
def test_every_dtype_name_works_for_compressor_and_decoder(tiny_checkpoints, name):
    spec = config(tiny_checkpoints)
    spec["compressor"]["dtype"] = spec["decoder"]["dtype"] = name
    model = TempoModel.from_config(spec, load_weights=False)
    assert model.compressor.svlm.dtype == model.decoder.model.dtype == torch.bfloat16
    assert model.compressor.memory_tokens.dtype == torch.bfloat16
    assert model.compressor.relevance_direction.dtype == torch.float32


def test_bf16_loads_and_answers(tiny_tempo_dir):
    model = TempoModel.from_pretrained(tiny_tempo_dir, compressor={"dtype": "bf16"}, decoder={"dtype": "bf16"})
    assert model.compressor.svlm.dtype == model.decoder.model.dtype == torch.bfloat16
    from tempo_kit.video import make_segments

    video = make_segments(torch.full((4, 64, 64, 3), 128, dtype=torch.uint8), 4)
    out = model.eval().answer(video, "What colour?", max_new_tokens=2)
    assert out.token_ids.shape[0] == 1 and out.allocations[0].relevance.dtype == torch.float32


@pytest.mark.parametrize("part", ["compressor", "decoder"])
def test_an_unknown_dtype_name_is_refused_naming_the_part(tiny_checkpoints, part):
    spec = config(tiny_checkpoints)
    spec[part]["dtype"] = "bf61"
    with pytest.raises(ConfigError, match=rf"{part} .*dtype: unknown dtype 'bf61' \(did you mean 'bf16'\?\)"):
        TempoModel.from_config(spec, load_weights=False)


def test_resolve_dtype_names():
    from tempo_kit.dtypes import dtype_name, resolve_dtype

    assert resolve_dtype("fp32") is resolve_dtype("torch.float32") is torch.float32
    assert resolve_dtype("half") is resolve_dtype("fp16") is torch.float16
    assert resolve_dtype("auto") == "auto" and dtype_name(torch.bfloat16) == "bfloat16"


def test_any_mlp_depth_is_one_projector_name_for_recipes_and_models(tiny_checkpoints, tmp_path):
    from tempo_kit.recipes.components import check_registry_name
    from tempo_kit.registry import PROJECTORS

    check_registry_name(PROJECTORS, "mlp6x_gelu", "model.projector", "recipe.yaml")  # no error
    with pytest.raises(ConfigError, match="model.projector: unknown projector 'mlp0x_gelu'"):
        check_registry_name(PROJECTORS, "mlp0x_gelu", "model.projector", "recipe.yaml")
    model = TempoModel.from_config(config(tiny_checkpoints, projector={"name": "mlp6x_gelu"}), load_weights=False)
    assert sum(isinstance(m, torch.nn.Linear) for m in model.projector.modules()) == 6


def test_one_local_checkpoint_check(tiny_checkpoints, tmp_path, monkeypatch):
    from tempo_kit.hub import local_checkpoint

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"looks like a hub id .*`hf download Qwen/Qwen3-4B --local-dir checkpoints/Qwen3-4B`"):
        local_checkpoint("Qwen/Qwen3-4B", "LLM")
    (tmp_path / "outputs" / "run").mkdir(parents=True)  # org/name that is a local path: no hub hint
    with pytest.raises(CheckpointError, match="has no config.json"):
        local_checkpoint("outputs/run", "LLM")
    with pytest.raises(CheckpointError, match=r"is a 'qwen3' model, not 'qwen3_vl'"):
        local_checkpoint(tiny_checkpoints["llm"], "SVLM", model_type="qwen3_vl")
    assert local_checkpoint(tiny_checkpoints["llm"], "LLM", need_tokenizer=True) == tiny_checkpoints["llm"]
