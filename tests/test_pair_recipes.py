"""The recipes for small real pairs (``recipes/pairs/<pair>/``): valid, training the parts their stage
trains, their decoder built at its real shape on the meta device, and run for two steps on tiny
checkpoints of the same families.

A recipe whose compressor is not registered in this build is skipped, with the name it waits for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training_recipes import EXPECTED, Snapshot, check_changes, ci_overrides

from tempo_kit.recipes import DEFAULTS, load_recipe, to_dict
from tempo_kit.recipes.load import _load_with_bases
from tempo_kit.registry import COMPRESSORS

ROOT = Path(__file__).resolve().parents[1]
PAIR_RECIPES = sorted((ROOT / "recipes" / "pairs").glob("*/*.yaml"))
IDS = [f"{p.parent.name}/{p.name}" for p in PAIR_RECIPES]
#: the decoder family each pair's LLM checkpoint is (what make-tiny --llm writes for the CPU run)
TINY_LLM = {"SmolLM2-360M-Instruct": "smollm2", "Llama-3.2-3B-Instruct": "llama", "Qwen2.5-3B-Instruct": "qwen2"}


def raw(path: Path):
    """The recipe merged over the defaults and its bases, before validation (which needs the
    compressor registered)."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(OmegaConf.create(DEFAULTS), _load_with_bases(path))


def needs_compressor(path: Path) -> str:
    name = str(raw(path).model.compressor.name)
    if name not in COMPRESSORS:
        pytest.skip(f"compressor {name!r} is not registered in this build")
    return name


def test_there_are_pair_recipes_for_three_pairs():
    assert {p.parent.name for p in PAIR_RECIPES} == {
        "smolvlm2_smollm2", "qwen25vl_llama32", "internvl3_qwen25", "llavaov_qwen25"
    }


@pytest.mark.parametrize("path", PAIR_RECIPES, ids=IDS)
def test_pair_recipe_says_how_to_run_it_and_names_a_stage(path):
    first = path.read_text().splitlines()[0]
    assert first == f"# tempo-kit fit --recipe {path.relative_to(ROOT)}"
    assert f"{path.stem}.yaml" in EXPECTED


@pytest.mark.parametrize("path", PAIR_RECIPES, ids=IDS)
def test_pair_recipe_validates_and_trains_its_stages_parts(path):
    needs_compressor(path)
    cfg = load_recipe(path, check_paths=False)
    assert dict(cfg.trainable) == EXPECTED[f"{path.stem}.yaml"]
    assert cfg.trainer.strategy.name == "auto"  # one GPU


@pytest.mark.parametrize("path", PAIR_RECIPES, ids=IDS)
def test_pair_recipe_reads_frames_at_its_familys_geometry_and_refuses_the_released_chain(path):
    from tempo_kit.errors import ConfigError

    compressor = needs_compressor(path)
    family = COMPRESSORS.get(compressor).family
    assert load_recipe(path, check_paths=False).data.preprocessing == family.preprocessing[0] == "processor"
    with pytest.raises(ConfigError) as refused:
        load_recipe(path, ["data.preprocessing=released"], check_paths=False)
    assert f"preprocessing='released' is not a frame geometry compressor {compressor!r} takes" in str(refused.value)
    assert "set data.preprocessing: processor" in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture(scope="module")
def real_decoders(tmp_path_factory):
    """The pairs' decoders at their real shapes, built without weights on the meta device."""
    from tempo_kit.decoders import HFCausalLM
    from tempo_kit.tiny.decoder_shapes import write_real_shape_decoder

    root = tmp_path_factory.mktemp("real_decoders")
    built = {}
    for name in TINY_LLM:
        with torch.device("meta"):
            built[name] = HFCausalLM(write_real_shape_decoder(name, root / name))
    return built


@pytest.mark.parametrize("path", PAIR_RECIPES, ids=IDS)
def test_pair_recipe_decoder_builds_at_real_shape_with_its_lora_targets(path, real_decoders):
    from tempo_kit.training.trainability import lora_targets

    cfg = raw(path)
    decoder = real_decoders[Path(str(cfg.model.decoder.pretrained)).name]
    assert all(p.is_meta for p in decoder.parameters())
    targets = lora_targets(decoder, cfg.lora.decoder.target_modules, "lora.decoder")
    names = {n.rsplit(".", 1)[-1] for n, _ in decoder.model.named_modules()}
    assert set(targets) <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in PAIR_RECIPES if p.stem == "stage3_lora"], ids=lambda p: p.parent.name)
def test_pair_recipe_trains_on_tiny_checkpoints_of_its_families(path, tiny_needle_benchmark, tmp_path):
    from tempo_kit.tiny import make_tiny
    from tempo_kit.tiny.svlm_families import SVLM_WRITERS
    from tempo_kit.training.commands import run_recipe

    compressor = needs_compressor(path)
    if compressor not in SVLM_WRITERS:
        pytest.skip(f"no tiny {compressor!r} checkpoint writer in this build")
    llm = TINY_LLM[Path(str(raw(path).model.decoder.pretrained)).name]
    tiny = make_tiny(tmp_path / "tiny", svlm=compressor, llm=llm)
    # 3 steps (LoRA needs them, see check_changes) of 2 samples: two epochs of the tiny benchmark
    overrides = [*ci_overrides(tiny, tiny_needle_benchmark, tmp_path / "out", None), "trainer.max_steps=3", "trainer.max_epochs=2"]
    overrides = [o for o in overrides if not o.startswith("data.preprocessing=")]  # the pair's own geometry
    cfg = to_dict(load_recipe(path, overrides))
    snapshot = Snapshot()
    run_recipe(cfg, "fit", callbacks=[snapshot])
    check_changes(snapshot, EXPECTED[f"{path.stem}.yaml"], steps=3)
