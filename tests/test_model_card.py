"""Every saved model folder carries a Hub model card that ``huggingface_hub.ModelCard.load`` reads."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def named_checkpoints(tiny_checkpoints, tmp_path_factory):
    """The tiny checkpoints under the folder names the stage recipes use (checkpoints/<hub name>)."""
    root = tmp_path_factory.mktemp("checkpoints")
    svlm = shutil.copytree(tiny_checkpoints["svlm"], root / "Qwen3-VL-2B-Instruct")
    llm = shutil.copytree(tiny_checkpoints["llm"], root / "Qwen3-4B")
    return svlm, llm


def build(svlm, llm):
    from tempo_kit.model import TempoModel

    return TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(svlm), "k_max": 4},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(llm)},
            "budget": 32,
        }
    )


def test_card_names_base_models_and_training(named_checkpoints, tmp_path):
    from huggingface_hub import ModelCard

    from tempo_kit import __version__
    from tempo_kit.manifest import verify_folder

    training = {
        "name": "stage2",
        "trainable": {"compressor": "frozen", "decoder": "lora"},
        "data": [{"split": "train", "file": "data/train.jsonl", "rows": 512}],
        "metrics": {"val/loss": 1.25, "val/open_scored": 64},
        "recipe": "run:\n  name: stage2\n",
    }
    out = build(*named_checkpoints).save_pretrained(tmp_path / "model", training=training)
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["base_model"] == ["Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-4B"]
    assert data["library_name"] == "tempo-kit" and data["pipeline_tag"] == "video-text-to-text"
    assert data["license"] == "apache-2.0" and "tempo" in data["tags"]
    assert f"tempo-kit {__version__}" in card.text
    assert "| decoder | hf_causal_lm | Qwen/Qwen3-4B | lora |" in card.text
    assert "| train | data/train.jsonl | 512 |" in card.text and "| val/open_scored | 64 |" in card.text
    assert verify_folder(out)  # the card is in the manifest like every other file


def test_card_of_a_reloaded_model_keeps_its_bases(named_checkpoints, tmp_path):
    from huggingface_hub import ModelCard

    from tempo_kit.model import TempoModel

    first = build(*named_checkpoints).save_pretrained(tmp_path / "first")
    again = TempoModel.from_pretrained(first).save_pretrained(tmp_path / "again")
    assert ModelCard.load(again / "README.md").data.base_model == ["Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-4B"]


def test_base_model_ids_of_each_source(tmp_path):
    from tempo_kit.model.card import base_model_ids

    snapshot = tmp_path / "hub" / "models--org--tempo-6b" / "snapshots" / ("a" * 40)
    assert base_model_ids(snapshot) == ["org/tempo-6b"]
    assert base_model_ids("Qwen/Qwen3-4B") == ["Qwen/Qwen3-4B"]
    assert base_model_ids(tmp_path / "my-llm") == [] and base_model_ids(None) == []
