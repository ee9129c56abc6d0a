"""The shipped router stage learns where the needle is without moving what the LLM reads.

``recipes/router.yaml`` trains only the relevance direction ``w_Yes − w_No``: the SVLM, memory
tokens, projector and LLM are the answer model's, bit for bit, so every answer at a given
allocation is the answer model's (measured alternatives: ``benchmarks/router_stage_options.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture(scope="module")
def needle_videos(tmp_path_factory):
    from tempo_kit.data.synthetic import make_needle_dataset

    root = tmp_path_factory.mktemp("router_keeps")
    common = {"duration": 20.0, "fps": 2.0, "size": (32, 32), "needle_duration": 4.0,
              "categories": ("colour",), "question_types": ("open",), "seed": 0}  # fmt: skip
    return {
        "train": make_needle_dataset(root, 12, split="train", **common),
        "test": make_needle_dataset(root, 4, split="test", **common),
    }


@pytest.fixture(scope="module")
def answer_model(tiny_checkpoints, tmp_path_factory):
    """The stand-in answer-stage export the router stage starts from (k_max 4)."""
    from tempo_kit.model import TempoModel

    torch.manual_seed(0)
    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 4},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
            "budget": 40,
        }
    )
    return model.save_pretrained(tmp_path_factory.mktemp("answer_model"))


@pytest.mark.slow
def test_shipped_router_stage_routes_to_the_needle_and_keeps_every_answer(answer_model, needle_videos, tmp_path):
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.model import TempoModel
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import FINAL_DIR, run_recipe

    out = tmp_path / "router"
    overrides = [
        f"run.init_from={answer_model}",
        "model.compressor.k_max=4",  # as the answer model was built
        f"run.output_dir={out}",
        f"data.train_files={needle_videos['train']}",
        f"data.val_files={needle_videos['test']}",
        "data.max_frames=40",
        "data.num_workers=0",
        "data.backend=pyav",
        "data.preprocessing=qwen3_vl",
        "trainer.strategy.name=auto",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.precision=32-true",
        "trainer.global_batch_size=4",
        "trainer.micro_batch_size=2",
        "trainer.max_epochs=3",
        "trainer.check_val_every_n_epoch=3",
        "trainer.enable_progress_bar=false",
        "trainer.gradient_checkpointing.compressor=false",
        "optim.lr.compressor=0.1",  # 9 steps for a 64-wide direction
        "optim.warmup_ratio=0.1",
    ]
    metrics = run_recipe(to_dict(load_recipe(RECIPES / "router.yaml", overrides)), "fit")
    # held-out videos: the direction alone learns where the needle is
    assert metrics["val/auroc"] >= 0.7, metrics

    before = TempoModel.from_pretrained(answer_model).state_dict()
    after = TempoModel.from_pretrained(out / FINAL_DIR).state_dict()
    assert before.keys() == after.keys()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved == ["compressor.relevance_direction"]

    row = json.loads(needle_videos["test"].read_text().splitlines()[0])
    video = needle_videos["test"].parent / row["video"]
    kwargs = {"budget": 40, "allocator": "uniform", "max_new_tokens": 4, "backend": "pyav", "window": 4}
    first = TempoPipeline.from_pretrained(answer_model).answer(video, row["question"], **kwargs)
    second = TempoPipeline.from_pretrained(out / FINAL_DIR).answer(video, row["question"], **kwargs)
    assert second.answer == first.answer
    assert not torch.equal(second.allocation.relevance, first.allocation.relevance)
