"""Strategies from recipe settings: FSDP2 units on the real model's blocks, DDP options, batch maths.

FSDP2 and DDP run for real on CPU processes in ``test_fsdp2.py`` and ``test_training_distributed.py``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.training.commands import resolve_checkpoint
from tempo_kit.training.scoring import prompt_only, split_answers
from tempo_kit.training.strategies import build_strategy, layer_classes
from tempo_kit.training.trainer import micro_batches_per_step


@pytest.fixture(scope="module")
def tiny_model(tiny_tempo_dir):
    from tempo_kit.model import TempoModel

    return TempoModel.from_pretrained(tiny_tempo_dir)


def test_fsdp_units_are_every_transformer_block(tiny_model):
    from tempo_kit.training.fsdp2 import blocks

    names = {c.__name__ for c in layer_classes(tiny_model)}
    assert {"Qwen3DecoderLayer", "Qwen3VLTextDecoderLayer", "Qwen3VLVisionBlock"} <= names
    wrapped = [name for name, _ in blocks(tiny_model)]
    config = tiny_model.decoder.model.config
    svlm = tiny_model.compressor.svlm.config
    expected = config.num_hidden_layers + svlm.text_config.num_hidden_layers + svlm.vision_config.depth
    assert len(wrapped) == expected
    assert all(".layers." in n or ".blocks." in n for n in wrapped)


def test_build_strategy_from_settings():
    from lightning.pytorch.strategies import DDPStrategy

    from tempo_kit.training.sharded_checkpoint import FSDP2Strategy

    spec = {
        "name": "fsdp",
        "process_group_backend": None,
        "fsdp": {"state_dict_type": "sharded", "cpu_offload": False},
    }
    fsdp = build_strategy(spec, "bf16-mixed")
    assert isinstance(fsdp, FSDP2Strategy) and fsdp._save_distributed_checkpoint is True
    assert fsdp.precision_name == "bf16-mixed"
    full = build_strategy({**spec, "fsdp": {"state_dict_type": "full"}}, "32-true")
    assert full._save_distributed_checkpoint is False
    with pytest.raises(ConfigError, match="limit_all_gathers is not an FSDP2 option"):
        build_strategy({**spec, "fsdp": {"limit_all_gathers": True}}, "32-true")
    ddp = build_strategy(
        {"name": "ddp", "process_group_backend": "gloo", "ddp": {"find_unused_parameters": True}},
        "32-true",
    )
    assert isinstance(ddp, DDPStrategy) and ddp._process_group_backend == "gloo"
    assert ddp._ddp_kwargs["find_unused_parameters"] is True
    assert build_strategy({"name": "single"}, "32-true") == "single_device"


@pytest.mark.parametrize(("world", "expected"), [(1, 128), (8, 16), (64, 2), (128, 1)])
def test_accumulation_reaches_the_global_batch(world, expected):
    assert micro_batches_per_step(128, 1, world) == expected
    assert micro_batches_per_step(256, 2, world) == expected


def test_accumulation_that_cannot_divide_is_an_error():
    with pytest.raises(ConfigError, match="global_batch_size=128 is not divisible by .* = 1 × 3"):
        micro_batches_per_step(128, 1, 3)


def test_resolve_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="--resume last: .*last.ckpt does not exist"):
        resolve_checkpoint("last", tmp_path, "--resume")
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 3}, tmp_path / "checkpoints" / "last.ckpt")  # a readable checkpoint
    assert resolve_checkpoint("last", tmp_path, "--resume").endswith("checkpoints/last.ckpt")
    assert resolve_checkpoint(None, tmp_path, "--resume") is None


def test_prompt_only_cuts_before_the_answer():
    from tempo_kit.types import IGNORE_INDEX, TempoBatch

    ids = torch.tensor([[1, 2, 3, 4, 5, 0], [6, 7, 8, 9, 10, 11]])
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[0, 3:5] = ids[0, 3:5]
    labels[1, 4:6] = ids[1, 4:6]
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    batch = TempoBatch([], ["q", "q"], ids, labels, mask)
    cut = prompt_only(batch)
    assert cut.input_ids.tolist() == [[1, 2, 3, 0], [6, 7, 8, 9]]
    assert cut.attention_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert (cut.labels == IGNORE_INDEX).all()


def test_split_answers_separates_multiple_choice_and_open_rows():
    texts = ["B", "The answer is (C).", "A", " Blue.", "red", "D", "no letter here"]
    answers = ["B", "C", "D", "blue", "green", None, "a"]
    choices, references, open_hits = split_answers(texts, answers, 4)
    assert (choices, references, open_hits) == (["B", "C", "A", None], ["B", "C", "D", "A"], [True, False])


def test_activation_checkpointing_uses_the_current_transformers_api(tiny_checkpoints, tiny_needle_benchmark):
    """Turned on per part from the recipe, with no deprecated transformers call (a FutureWarning
    here fails the test)."""
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.module import TempoModule

    demo = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    recipe = to_dict(
        load_recipe(
            demo,
            [
                f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
                f"model.decoder.pretrained={tiny_checkpoints['llm']}",
                f"data.train_files={tiny_needle_benchmark}",
                "data.val_files=null",
                "trainable.compressor=full",
                "trainer.gradient_checkpointing.compressor=true",
                "trainer.gradient_checkpointing.decoder=true",
            ],
        )
    )
    module = TempoModule(recipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        module.set_up_model()
        model = module.model
        assert model.decoder.is_gradient_checkpointing
        assert model.compressor.svlm.is_activation_checkpointing
        model.decoder.gradient_checkpointing_disable()
        assert not model.decoder.is_gradient_checkpointing
