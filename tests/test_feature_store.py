"""The stage-3 feature store: training from it gives the video path's losses and gradients, without
the SVLM; a store of another model, another geometry or a recipe that trains the stored parts is
refused in one line before training."""

from __future__ import annotations

import json

import pytest
import torch

from tempo_kit.data import TempoDataModule
from tempo_kit.data.feature_prepare import feature_settings
from tempo_kit.data.features import FeatureStoreError, model_identity
from tempo_kit.data.prepare import prepare_file
from tempo_kit.data.shards import ShardError
from tempo_kit.data.synthetic import make_needle_dataset
from tempo_kit.model import TempoModel
from tempo_kit.model.stored import stored_features_model, with_frozen_parts
from tempo_kit.training.trainability import apply_trainability

GEOMETRY = {"max_frames": 8, "max_long_edge": 64, "preprocessing": "qwen3_vl"}
STAGE3 = {"compressor": "frozen", "memory_tokens": "frozen", "projector": "frozen", "decoder": "full"}
TEXT_ROW = {"id": "txt", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
LORA = {"decoder": {"module": "model", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
MISSING = {"id": "gone", "video": "videos/missing.mp4", "conversations": TEXT_ROW["conversations"]}


@pytest.fixture(scope="module")
def store(tiny_tempo_dir, tiny_tokenizer, tmp_path_factory):
    """Four needle videos, a text row and a row with missing media, prepared into an fp32 store."""
    root = tmp_path_factory.mktemp("features")
    rows = make_needle_dataset(root, 4, split="train", duration=4.0, size=(48, 64), question_types=["mc"], seed=1)
    with open(rows, "a") as handle:
        handle.write(json.dumps(TEXT_ROW) + "\n")
    clean = root / "clean.jsonl"  # the rows the store keeps: the file loader's order over them is the store's
    clean.write_text(rows.read_text())
    with open(rows, "a") as handle:
        handle.write(json.dumps(MISSING) + "\n")
    sampling = files(tiny_tempo_dir, rows).sampling
    settings = feature_settings(tiny_tempo_dir)
    index = prepare_file(rows, root / "store", sampling=sampling, shard_rows=2, progress=False, features=settings)
    return {"rows": rows, "clean": clean, "folder": root / "store", "index": index, "root": root}


def files(model_dir, rows, **data):
    return TempoDataModule(tokenizer=str(model_dir / "decoder"), batch_size=2, seed=3, train_files=rows, **{**GEOMETRY, **data})


def features(model_dir, folder, **data):
    options = {**GEOMETRY, **data}
    return TempoDataModule(tokenizer=str(model_dir / "decoder"), batch_size=2, seed=3, features=str(folder),
                           features_model=str(model_dir), **options)  # fmt: skip


def batches(dm):
    dm.setup("fit")
    return list(dm.train_dataloader())


def test_the_index_counts_rows_and_names_the_model(store, tiny_tempo_dir):
    index = store["index"]
    counts = index["counts"]
    assert (counts["rows"], counts["kept"], counts["skipped"], counts["shards"]) == (6, 5, 1, 3)
    assert counts["skipped_by_reason"] == {"MediaError": 1}
    assert index["payload"] == "features"
    assert index["features"]["model_identity"] == model_identity(tiny_tempo_dir)
    assert index["features"]["dtype"] == "fp32" and index["features"]["shape"] == [16, 48]
    assert index["geometry"]["window"] == 4 and index["geometry"]["max_frames"] == 8


@pytest.mark.slow
def test_rerun_keeps_the_finished_store(store, tiny_tempo_dir):
    tars = sorted(store["folder"].glob("*.tar"))
    before = {tar.name: tar.stat().st_mtime_ns for tar in tars}
    sampling = files(tiny_tempo_dir, store["rows"]).sampling
    again = prepare_file(store["rows"], store["folder"], sampling=sampling, shard_rows=2, progress=False,
                         features=feature_settings(tiny_tempo_dir))  # fmt: skip
    assert again == store["index"]
    assert {tar.name: tar.stat().st_mtime_ns for tar in tars} == before
    # a run killed while writing the second shard: its sidecar never came, its tar is half written
    second = tars[1]
    data = second.read_bytes()
    second.with_suffix(".json").unlink()
    second.write_bytes(data[: len(data) // 2])
    rebuilt = prepare_file(store["rows"], store["folder"], sampling=sampling, shard_rows=2, progress=False,
                           features=feature_settings(tiny_tempo_dir))  # fmt: skip
    assert rebuilt == store["index"] and second.read_bytes() == data  # the same bytes: no gap, no duplicate
    assert tars[0].stat().st_mtime_ns == before[tars[0].name]
    with pytest.raises(ShardError, match="another prepare run"):  # another dtype: another run's folder
        prepare_file(store["rows"], store["folder"], sampling=sampling, shard_rows=2, progress=False,
                     features=feature_settings(tiny_tempo_dir, "bf16"))  # fmt: skip


def _step(model, batch, optimizer):
    optimizer.zero_grad()
    out = model(batch)
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.decoder.named_parameters() if p.grad is not None}
    allocated = model(batch, allocate=True, budget=20, k_min=2)  # ATA on the relevance: the store's, or the SVLM's
    optimizer.step()
    return out.loss.detach(), grads, allocated.loss.detach(), [a.counts for a in allocated.allocations if a is not None]


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["full", "lora"])
def test_store_loss_and_gradients_equal_the_video_path(store, tiny_tempo_dir, decoder):
    """fp32, same rows, same order: every step's loss, every LLM (or LoRA) gradient and the allocation equal."""
    video_batches = batches(files(tiny_tempo_dir, store["clean"]))
    stored_batches = batches(features(tiny_tempo_dir, store["folder"]))
    assert [b.ids for b in video_batches] == [b.ids for b in stored_batches]
    assert all(not hasattr(s, "frames") for b in stored_batches for s in b.segments)  # nothing decoded
    models = [TempoModel.from_pretrained(tiny_tempo_dir), stored_features_model(tiny_tempo_dir)]
    assert sum(p.numel() for p in models[1].compressor.parameters()) == 0  # no SVLM in memory
    assert sum(p.numel() for p in models[1].projector.parameters()) == 0
    optimizers = []
    for model in models:
        torch.manual_seed(0)  # the same LoRA initialisation in both
        apply_trainability(model, {**STAGE3, "decoder": decoder}, LORA)
        model.train()
        optimizers.append(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    for video, stored in zip(video_batches, stored_batches):  # 3 optimizer steps
        a, b = _step(models[0], video, optimizers[0]), _step(models[1], stored, optimizers[1])
        torch.testing.assert_close(b[0], a[0], rtol=1e-5, atol=1e-6)
        assert a[1].keys() == b[1].keys() and a[1]
        assert decoder == "full" or all("lora_" in name for name in a[1])
        for name in a[1]:
            torch.testing.assert_close(b[1][name], a[1][name], rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(b[2], a[2], rtol=1e-5, atol=1e-6)
        assert [c.tolist() for c in b[3]] == [c.tolist() for c in a[3]]
    assert len(video_batches) == 3


def test_a_whole_model_does_not_project_a_store_batch_again(store, tiny_tempo_dir):
    """The store's memory was projected when stored: the whole model's loss on it is the video path's."""
    model = TempoModel.from_pretrained(tiny_tempo_dir).train()  # the store's prompt (eval asks the routing one)
    video, stored = batches(files(tiny_tempo_dir, store["clean"]))[0], batches(features(tiny_tempo_dir, store["folder"]))[0]
    assert [s.kind for s in stored.segments] == [s.kind for s in video.segments]
    with torch.no_grad():
        assert model.compress(stored).projected and not model.compress(video).projected
        torch.testing.assert_close(model(stored).loss, model(video).loss, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bf16_store_is_half_the_size_and_close(store, tiny_tempo_dir):
    sampling = files(tiny_tempo_dir, store["rows"]).sampling
    index = prepare_file(store["rows"], store["root"] / "bf16", sampling=sampling, shard_rows=2, progress=False,
                         features=feature_settings(tiny_tempo_dir, "bf16"))  # fmt: skip
    sizes = [sum(e["size"] for s in i["shards"] for e in s["samples"]) for i in (store["index"], index)]
    assert 0.45 < sizes[1] / sizes[0] < 0.6
    model = stored_features_model(tiny_tempo_dir).train()
    exact, half = batches(features(tiny_tempo_dir, store["folder"]))[0], batches(features(tiny_tempo_dir, store["root"] / "bf16"))[0]
    assert half.segments[1].tokens.dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(model(half).loss, model(exact).loss, rtol=2e-2, atol=0)


def test_store_of_another_model_or_geometry_is_refused(store, tiny_tempo_dir, tmp_path):
    other = TempoModel.from_pretrained(tiny_tempo_dir)
    with torch.no_grad():
        next(other.projector.parameters()).view(-1)[0] += 1.0
    other_dir = other.save_pretrained(tmp_path / "other")
    with pytest.raises(FeatureStoreError, match="another compressor/projector") as error:
        features(other_dir, store["folder"])
    assert "\n" not in str(error.value) and "prepare --features --model" in str(error.value)
    with pytest.raises(FeatureStoreError, match="max_frames=8 but the recipe has data.max_frames=12"):
        features(tiny_tempo_dir, store["folder"], max_frames=12)
    with pytest.raises(FeatureStoreError, match="window=4"):
        features(tiny_tempo_dir, store["folder"], window=2)
    with pytest.raises(FeatureStoreError, match="run.init_from"):
        TempoDataModule(tokenizer=str(tiny_tempo_dir / "decoder"), features=str(store["folder"]), **GEOMETRY)


def test_recipe_that_trains_a_stored_part_is_refused():
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.features import check_feature_recipe

    recipe = to_dict(load_recipe("stage3_features", ["run.init_from=somewhere"], check_paths=False))
    check_feature_recipe(recipe)
    recipe["trainable"]["projector"] = "full"
    with pytest.raises(FeatureStoreError, match="trainable.projector='full'"):
        check_feature_recipe(recipe)
    recipe["trainable"]["projector"] = "frozen"
    recipe["router"]["weight"] = 1.0
    with pytest.raises(FeatureStoreError, match="router.weight"):
        check_feature_recipe(recipe)
    recipe["router"]["weight"] = 0.0
    recipe["data"]["val_files"] = "val.jsonl"
    with pytest.raises(FeatureStoreError, match="data.val_files is set beside data.features"):
        check_feature_recipe(recipe)
    recipe["data"]["val_files"] = None
    recipe["run"]["init_from"] = None
    with pytest.raises(FeatureStoreError, match="needs run.init_from"):
        check_feature_recipe(recipe)


def test_export_puts_the_frozen_parts_back(tiny_tempo_dir, tmp_path):
    model = stored_features_model(tiny_tempo_dir)
    whole = with_frozen_parts(model)
    reference = TempoModel.from_pretrained(tiny_tempo_dir)
    assert whole.decoder is model.decoder
    for part in ("compressor", "projector"):
        theirs = getattr(reference, part).state_dict()
        for key, value in getattr(whole, part).state_dict().items():
            assert torch.equal(value, theirs[key]), f"{part}.{key}"


@pytest.mark.slow
def test_fit_from_the_store_trains_the_llm_and_exports_a_whole_model(store, tiny_tempo_dir, tiny_checkpoints, tmp_path):
    """``tempo-kit fit`` on ``stage3_features.yaml``: 2 steps, the LLM moves, the export loads whole."""
    from pathlib import Path

    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import FINAL_DIR, run_recipe

    overrides = [
        f"run.init_from={tiny_tempo_dir}", f"run.output_dir={tmp_path / 'run'}",
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}", f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=16", f"data.features=[{store['folder']}]", "data.max_frames=8",
        "data.max_long_edge=64", "data.preprocessing=qwen3_vl", "data.num_workers=0", "trainer.strategy.name=auto",
        "trainer.accelerator=cpu", "trainer.devices=1", "trainer.micro_batch_size=1", "trainer.global_batch_size=2",
        "trainer.max_steps=2", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    recipe = to_dict(load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "stage3_features.yaml", overrides))
    run_recipe(recipe, "fit")
    start, final = TempoModel.from_pretrained(tiny_tempo_dir), TempoModel.from_pretrained(tmp_path / "run" / FINAL_DIR)
    trained = final.state_dict()
    for name, value in start.state_dict().items():
        assert torch.equal(value, trained[name]) != name.startswith("decoder."), name


@pytest.mark.slow
def test_prepare_command_writes_a_store_and_prints_its_block(store, tiny_tempo_dir, tmp_path, capsys):
    from tempo_kit.cli import main

    recipe = ["--recipe", "stage3_features", "--out", str(tmp_path / "out")]
    data = [f"data.train_files={store['clean']}", "data.max_frames=8", "data.max_long_edge=64", "data.preprocessing=qwen3_vl"]
    assert main(["prepare", *recipe, "--model", str(tiny_tempo_dir), *data]) == 2  # --model without --features
    assert "--model is read only with --features" in capsys.readouterr().err
    assert main(["prepare", *recipe, "--features", "--model", str(tiny_tempo_dir), "--feature-dtype", "bf16", *data]) == 0
    out = capsys.readouterr().out
    assert "5 of 5 rows" in out and f"features:\n    - {{path: {tmp_path / 'out' / 'clean'}}}" in out
    index = json.loads((tmp_path / "out" / "clean" / "index.json").read_text())
    assert index["features"]["dtype"] == "bf16" and index["payload"] == "features"
