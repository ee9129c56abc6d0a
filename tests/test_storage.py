"""The kit format on disk: each component stores itself in the Hugging Face layout, a frozen base
is stored once in its own dtype, save → load gives the same model, and format-1 folders still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tempo_kit.errors import CheckpointError
from tempo_kit.model import TempoModel, inference_batch
from tempo_kit.model.storage import FORMAT_VERSION, STATE_DICT_NAME
from tempo_kit.types import Segments


def bf16_copy(source: Path, target: Path) -> Path:
    """``source`` checkpoint with every float tensor in bfloat16 (as Qwen's releases ship)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    state = load_file(str(source / "model.safetensors"))
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()},
              str(target / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    config = json.loads((target / "config.json").read_text())
    config["dtype"] = "bfloat16"
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module")
def bf16_bases(tiny_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("bf16")
    return {name: bf16_copy(path, root / name) for name, path in tiny_checkpoints.items()}


def stage_config(bases, **overrides):
    """The stage recipes' model: both bases trained with fp32 master weights."""
    cfg = {
        "compressor": {"name": "qwen3_vl", "pretrained": str(bases["svlm"]), "k_max": 8, "dtype": "float32"},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(bases["llm"]), "dtype": "float32"},
        "budget": 20,
    }
    return {**cfg, **overrides}


def video(num: int, seed: int = 0, window: int = 4) -> Segments:
    from tempo_kit.video import make_segments

    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num * window, 64, 96, 3), generator=g, dtype=torch.uint8)
    return make_segments(frames, window)


def weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors"))


def file_dtypes(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118


@pytest.mark.slow
def test_stage_export_with_a_frozen_svlm_stores_it_once_in_its_own_dtype(bf16_bases, tmp_path):
    torch.manual_seed(0)
    model = TempoModel.from_config(stage_config(bf16_bases)).eval()
    assert model.compressor.svlm.dtype == torch.float32 == model.decoder.model.dtype
    with torch.no_grad():  # what stage 0 trains: memory tokens and projector; SVLM and LLM frozen
        model.compressor.memory_tokens.add_(0.125)
        model.projector.proj.bias.add_(0.25)
    saved = model.save_pretrained(tmp_path / "stage0")

    svlm, llm = bf16_bases["svlm"] / "model.safetensors", bf16_bases["llm"] / "model.safetensors"
    # unchanged bases: byte-identical copies, in bf16 (not a second, fp32 copy of the SVLM)
    assert (saved / "compressor" / "model.safetensors").read_bytes() == svlm.read_bytes()
    assert (saved / "decoder" / "model.safetensors").read_bytes() == llm.read_bytes()
    assert file_dtypes(saved / "compressor" / STATE_DICT_NAME) == {"memory_tokens": "F32", "relevance_direction": "F32"}
    projector = saved / "projector" / STATE_DICT_NAME
    trained = (saved / "compressor" / STATE_DICT_NAME).stat().st_size + projector.stat().st_size
    assert weight_bytes(saved) == svlm.stat().st_size + llm.stat().st_size + trained
    assert not (saved / "compressor" / "pretrained").exists()  # format 1's base copy is gone
    document = json.loads((saved / "tempo_config.json").read_text())
    assert document["format_version"] == FORMAT_VERSION == 2
    assert document["compressor"]["pretrained"] == "compressor" and document["compressor"]["dtype"] == "float32"

    loaded = TempoModel.from_pretrained(saved).eval()
    assert loaded.compressor.svlm.dtype == torch.float32
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    batch = inference_batch(model.tokenizer, [video(3, seed=1)], ["Where is it?"])
    a, b = model.generate(batch, max_new_tokens=3), loaded.generate(batch, max_new_tokens=3)
    assert torch.equal(a.token_ids, b.token_ids)
    torch.testing.assert_close(a.allocations[0].relevance, b.allocations[0].relevance, rtol=0, atol=0)


@pytest.mark.slow
def test_trained_svlm_tensors_are_stored_in_the_training_dtype_the_rest_in_the_base_dtype(bf16_bases, tmp_path):
    model = TempoModel.from_config(stage_config(bf16_bases)).eval()
    with torch.no_grad():  # a full-trained norm: no bf16 value holds it any more
        model.compressor.svlm.language_model.norm.weight.add_(1e-3)
    saved = model.save_pretrained(tmp_path / "stage1")
    dtypes = file_dtypes(saved / "compressor" / "model.safetensors")
    assert dtypes.pop("model.language_model.norm.weight") == "F32"
    assert set(dtypes.values()) == {"BF16"} and "lm_head.weight" not in dtypes  # tied head: not kept
    loaded = TempoModel.from_pretrained(saved)
    for key, value in model.compressor.state_dict().items():
        assert torch.equal(value, loaded.compressor.state_dict()[key]), key
    # each component folder is a Hugging Face checkpoint: transformers loads it as it is
    from transformers import AutoModelForCausalLM, Qwen3VLForConditionalGeneration

    hf_svlm = Qwen3VLForConditionalGeneration.from_pretrained(str(saved / "compressor"), dtype=torch.float32)
    for key, value in hf_svlm.model.state_dict().items():
        assert torch.equal(value, model.compressor.svlm.state_dict()[key]), key
    hf_llm = AutoModelForCausalLM.from_pretrained(str(saved / "decoder"))
    assert torch.equal(hf_llm.lm_head.weight, model.decoder.model.lm_head.weight.to(torch.bfloat16))
    # a folder saved again from the loaded model holds the same tensors
    again = loaded.save_pretrained(tmp_path / "again")
    assert file_dtypes(again / "compressor" / "model.safetensors") == file_dtypes(
        saved / "compressor" / "model.safetensors"
    )


@pytest.mark.slow
def test_pooling_compressor_stores_only_its_vision_tower(bf16_bases, tmp_path):
    pooling = {"name": "pooling", "pretrained": str(bf16_bases["svlm"]), "k_max": 4, "dtype": "fp32"}
    cfg = stage_config(bf16_bases, compressor=pooling)
    model = TempoModel.from_config(cfg)
    saved = model.save_pretrained(tmp_path / "pooling")
    dtypes = file_dtypes(saved / "compressor" / "model.safetensors")
    assert all(key.startswith("model.visual.") for key in dtypes) and set(dtypes.values()) == {"BF16"}
    assert not (saved / "compressor" / STATE_DICT_NAME).exists()  # nothing of its own beside the tower
    loaded = TempoModel.from_pretrained(saved)
    assert loaded.compressor.visual.dtype == torch.float32
    for key, value in model.compressor.state_dict().items():
        assert torch.equal(value, loaded.compressor.state_dict()[key]), key


@pytest.mark.slow
def test_format_1_folders_still_load(tiny_checkpoints, tmp_path):
    """The previous layout: a copy of the base in compressor/pretrained/ plus a state dict of what differs."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    model = TempoModel.from_config(stage_config(tiny_checkpoints)).eval()
    with torch.no_grad():
        model.compressor.svlm.language_model.norm.weight.mul_(2)
    old = tmp_path / "old"
    shutil.copytree(tiny_checkpoints["svlm"], old / "compressor" / "pretrained")
    compressor = model.compressor.state_dict()
    save_file({k: compressor[k].contiguous() for k in ("memory_tokens", "relevance_direction",
               "svlm.language_model.norm.weight")}, str(old / "compressor" / STATE_DICT_NAME))  # fmt: skip
    model.decoder.model.save_pretrained(str(old / "decoder"))
    model.decoder.tokenizer.save_pretrained(str(old / "decoder"))
    (old / "projector").mkdir()
    save_file({k: v.contiguous() for k, v in model.projector.state_dict().items()}, str(old / "projector" / STATE_DICT_NAME))
    config = model.config.to_dict()
    config["compressor"]["pretrained"] = "compressor/pretrained"
    config["decoder"]["pretrained"] = "decoder"
    (old / "tempo_config.json").write_text(json.dumps({"format": "tempo-kit", "format_version": 1, **config}))

    loaded = TempoModel.from_pretrained(old)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_a_folder_of_an_unknown_format_version_is_refused_naming_the_fix(tiny_tempo_dir, tmp_path):
    folder = shutil.copytree(tiny_tempo_dir, tmp_path / "model")
    document = json.loads((folder / "tempo_config.json").read_text())
    (folder / "manifest.json").unlink()
    (folder / "tempo_config.json").write_text(json.dumps({**document, "format_version": 7}))
    with pytest.raises(CheckpointError, match="format_version 7; this kit reads versions 1, 2: .*upgrade tempo-kit"):
        TempoModel.from_pretrained(folder)


def test_loading_reads_each_weight_file_once(tiny_tempo_dir, monkeypatch):
    import safetensors

    opened: list[str] = []
    original = safetensors.safe_open

    def counting(path, *args, **kwargs):
        opened.append(Path(path).relative_to(tiny_tempo_dir).as_posix())
        return original(path, *args, **kwargs)

    monkeypatch.setattr(safetensors, "safe_open", counting)
    TempoModel.from_pretrained(tiny_tempo_dir, verify=False)
    assert sorted(opened) == ["compressor/model.safetensors", "decoder/model.safetensors"]


@pytest.mark.slow
def test_export_size_benchmark_counts_a_frozen_stage_once():
    """benchmarks/export_size.py at real shapes: stage 0's compressor is the bf16 SVLM plus its own
    float32 tensors, where format 1 stored the base copy plus every SVLM tensor again in float32."""
    from repo_scripts import load_script

    from tempo_kit.recipes.load import load_recipe

    bench = load_script("benchmarks/export_size.py")
    keys = bench.component_tensors()
    svlm = sum(bench.nbytes(s, torch.bfloat16) for k, s in keys["compressor"].items() if k.startswith("svlm."))
    own = (128 * 2048 + 2048) * 4  # memory tokens [128, 2048] and relevance direction [2048], float32
    held = {f"{c}.{k}": torch.bfloat16 for c, tensors in keys.items() for k in tensors}
    held |= {"compressor.memory_tokens": torch.float32, "compressor.relevance_direction": torch.float32}
    held |= {f"projector.{k}": torch.float32 for k in keys["projector"]}
    recipe = load_recipe("recipes/stage0.yaml", check_paths=False)
    before, after, _ = bench.stage_sizes(recipe, keys, held)
    assert after["compressor"] == svlm + own
    assert before["compressor"] == svlm + 2 * svlm + own
    assert after["projector"] == before["projector"] == (2560 * 2048 + 2560) * 4


def test_saving_after_the_source_checkpoint_is_gone_names_it(tiny_checkpoints, tmp_path):
    from tempo_kit.decoders import HFCausalLM

    source = shutil.copytree(tiny_checkpoints["llm"], tmp_path / "llm")
    decoder = HFCausalLM(source)
    shutil.rmtree(source)
    with pytest.raises(CheckpointError, match=r"cannot save the HFCausalLM: .*llm, the checkpoint it was built from, is gone"):
        decoder.save_pretrained(tmp_path / "out")
