"""Every shipped recipe trains 2 optimizer steps on CPU, and each changes exactly its parameters.

The stage recipes run as shipped except for what a CPU test machine cannot have: the tiny
checkpoints and synthetic needle videos replace the downloaded models and datasets, FSDP becomes
a single process (two-process FSDP2 runs in ``test_fsdp2.py``), batches shrink to 2 samples. The four stages are
chained the way the paper runs them: each starts from the previous stage's exported ``final/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from omegaconf import OmegaConf
from tiny_runs import tiny_run_overrides

from tempo_kit.recipes import load_recipe, to_dict
from tempo_kit.training.commands import FINAL_DIR, run_recipe
from tempo_kit.training.trainability import part_of

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SHIPPED = sorted(p.name for p in RECIPES.glob("*.yaml") if p.name != "base.yaml")

#: Table A: which parts each stage trains (LoRA variants train only adapters in "lora" parts).
EXPECTED = {
    "stage0.yaml": {
        "compressor": "frozen",
        "memory_tokens": "full",
        "projector": "full",
        "decoder": "frozen",
    },
    "stage1.yaml": {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"},
    "stage2.yaml": {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"},
    "stage3.yaml": {
        "compressor": "frozen",
        "memory_tokens": "frozen",
        "projector": "frozen",
        "decoder": "full",
    },
    "stage2_lora.yaml": {
        "compressor": "lora",
        "memory_tokens": "full",
        "projector": "full",
        "decoder": "lora",
    },
    "stage3_lora.yaml": {
        "compressor": "frozen",
        "memory_tokens": "frozen",
        "projector": "frozen",
        "decoder": "lora",
    },
    # stage3_features.yaml trains the LLM from a feature store: tests/test_feature_store.py runs it
    "stage3_features.yaml": {
        "compressor": "frozen",
        "memory_tokens": "frozen",
        "projector": "frozen",
        "decoder": "full",
    },
    # router.yaml trains the relevance direction alone (router.train_direction): test_router_keeps_answers.py
    "router.yaml": {"compressor": "frozen", "memory_tokens": "frozen", "projector": "frozen", "decoder": "frozen"},
    "router_lora.yaml": {
        "compressor": "lora",
        "memory_tokens": "frozen",
        "projector": "frozen",
        "decoder": "frozen",
    },
    "router_full.yaml": {
        "compressor": "full",
        "memory_tokens": "frozen",
        "projector": "frozen",
        "decoder": "frozen",
    },
    "demo.yaml": {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"},
}


class Snapshot(Callback):
    """Parameters when training starts (after trainability) and when it ends."""

    def on_train_start(self, trainer, pl_module):
        self.before = {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}
        self.requires_grad = {n for n, p in pl_module.model.named_parameters() if p.requires_grad}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.live = getattr(self, "live", set()) | {
            n for n, p in pl_module.model.named_parameters() if p.grad is not None and bool(p.grad.any())
        }

    def on_train_end(self, trainer, pl_module):
        self.after = {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}
        self.steps = trainer.global_step


def ci_overrides(tiny_checkpoints, data: Path, out: Path, init_from: Path | None) -> list[str]:
    """The CPU stand-ins for a shipped recipe: tiny models, synthetic videos, 2 steps of 2 samples."""
    return [
        *tiny_run_overrides(tiny_checkpoints, data),
        f"run.init_from={init_from if init_from else 'null'}",
        f"run.output_dir={out}",
        "data.num_workers=0",
        "trainer.strategy.name=auto",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.global_batch_size=2",
        "trainer.max_steps=2",
    ]


def check_changes(snapshot: Snapshot, modes: dict[str, str], steps: int = 2) -> None:
    """Exactly the parameters a stage trains have moved; every other one is bit-identical.

    Every intended tensor must move (the tiny SVLM has more text layers than DeepStack injections,
    so every merger reaches the memory positions). LoRA's ``lora_A`` has a zero gradient until ``lora_B`` (zero at init) has moved, and warm-up
    makes step 1's learning rate 0, so LoRA runs take 3 steps.
    """
    assert snapshot.steps == steps
    intended_names = set()
    for name, before in snapshot.before.items():
        mode = modes[part_of(name)]
        intended = mode == "full" or (mode == "lora" and "lora_" in name)
        intended_names |= {name} if intended else set()
        assert (name in snapshot.requires_grad) == intended, name
        assert intended or name not in snapshot.live, name
        moved = not torch.equal(before, snapshot.after[name])
        assert moved == (name in snapshot.live), f"{name} ({mode}) moved={moved}"
    dead = intended_names - snapshot.live
    assert not dead, sorted(dead)
    for part, mode in modes.items():
        trained = [n for n in intended_names if part_of(n) == part]
        assert (mode != "frozen") == bool(trained), part
        assert mode == "frozen" or set(trained) & snapshot.live, part


def fit(recipe: str, overrides: list[str]) -> tuple[Snapshot, dict]:
    cfg = to_dict(load_recipe(RECIPES / recipe, overrides))
    snapshot = Snapshot()
    run_recipe(cfg, "fit", callbacks=[snapshot])
    return snapshot, cfg


def test_stages_chain_and_train_exactly_their_parts(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    from huggingface_hub import ModelCard

    previous = None
    for stage in ("stage0.yaml", "stage1.yaml", "stage2.yaml", "stage3.yaml"):
        out = tmp_path / stage.removesuffix(".yaml")
        snapshot, cfg = fit(stage, ci_overrides(tiny_checkpoints, tiny_needle_benchmark, out, previous))
        assert cfg["trainable"] == EXPECTED[stage]
        check_changes(snapshot, EXPECTED[stage])
        if previous is not None:  # started from the previous stage's weights, not the base checkpoints
            from tempo_kit.model import TempoModel

            start = TempoModel.from_pretrained(previous)
            for name, value in start.state_dict().items():
                if name in snapshot.before:
                    assert torch.equal(value, snapshot.before[name]), name
        assert (out / FINAL_DIR / "tempo_config.json").is_file()
        card = ModelCard.load(out / FINAL_DIR / "README.md")  # the export's card says how it was trained
        assert f"Recipe `{cfg['run']['name']}`" in card.text and f"| train | {tiny_needle_benchmark} |" in card.text
        assert "Trainability per part: " + ", ".join(f"{k}: {v}" for k, v in cfg["trainable"].items()) in card.text
        assert (
            OmegaConf.to_container(OmegaConf.load(out / "recipe.yaml")) == cfg
        )  # the resolved recipe is kept
        assert (out / "checkpoints" / "last.ckpt").is_file()
        previous = out / FINAL_DIR


@pytest.mark.parametrize("recipe", ["stage2_lora.yaml", "stage3_lora.yaml", "router_lora.yaml"])
def test_lora_recipes_train_adapters_and_export_merged(
    recipe, tiny_checkpoints, tiny_needle_benchmark, tmp_path
):
    from tempo_kit.model import TempoModel

    overrides = ci_overrides(tiny_checkpoints, tiny_needle_benchmark, tmp_path, None)
    overrides += [
        "lora.decoder.r=4",
        "lora.decoder.lora_alpha=8",
        "lora.compressor.r=4",
        "lora.compressor.lora_dropout=0",
    ]
    overrides += ["lora.decoder.lora_dropout=0", "trainer.max_steps=3", "trainer.max_epochs=2"]
    snapshot, _ = fit(recipe, overrides)
    check_changes(snapshot, EXPECTED[recipe], steps=3)
    exported = TempoModel.from_pretrained(tmp_path / FINAL_DIR)
    names = dict(exported.named_parameters())
    assert not any("lora_" in n for n in names)
    lora_parts = [part for part in ("compressor", "decoder") if EXPECTED[recipe][part] == "lora"]
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == lora_parts
    for part in lora_parts:  # peft's own layout, one folder per part
        assert (tmp_path / "adapters" / part / "adapter_model.safetensors").is_file()
    # the merged LoRA parts differ from their base only through the adapters' product
    moved = []
    for name, value in names.items():
        base = snapshot.before.get(
            name, snapshot.before.get(name.replace("_proj.weight", "_proj.base_layer.weight"))
        )
        assert base is not None, name
        if EXPECTED[recipe].get(part_of(name)) == "lora" and not torch.equal(value, base):
            moved.append(name)
    assert moved and all(n.endswith("_proj.weight") for n in moved)


def test_demo_recipe_runs_two_steps(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    overrides = ci_overrides(tiny_checkpoints, tiny_needle_benchmark, tmp_path, None)
    overrides += [f"data.val_files={tiny_needle_benchmark}", f"data.test_files={tiny_needle_benchmark}"]
    snapshot, cfg = fit("demo.yaml", overrides)
    check_changes(snapshot, EXPECTED["demo.yaml"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = {
        "train/loss",
        "train/grad_norm",
        "train/samples_per_s",
        "train/visual_tokens_per_sample",
        "lr/decoder",
    }
    assert keys <= set(rows[0]) and rows[0]["train/visual_tokens_per_sample"] > 0
    for verb, stage in (("validate", "val"), ("test", "test")):  # weights read back from the last checkpoint
        metrics = run_recipe(cfg, verb, ckpt="last")
        assert metrics[f"{stage}/scored"] == 4  # what the accuracy counts: test_validation_accuracy.py
        assert metrics[f"{stage}/loss"] > 0


def test_every_shipped_recipe_is_covered():
    assert set(SHIPPED) == set(EXPECTED), "add the new recipe to EXPECTED and run it above"
    for name in SHIPPED:
        first = (RECIPES / name).read_text().splitlines()[0]
        assert first == f"# tempo-kit fit --recipe recipes/{name}", name
