"""TempoDataModule: splits, mixtures, tokenizer resolution, a real Lightning fit over its batches."""

from __future__ import annotations

import json
import logging

import lightning as L
import pytest
import torch

from tempo_kit.data import TempoDataModule
from tempo_kit.data.synthetic import make_needle_dataset
from tempo_kit.errors import ConfigError
from tempo_kit.types import TempoBatch


@pytest.fixture(scope="module")
def needle(tmp_path_factory):
    root = tmp_path_factory.mktemp("dm")
    train = make_needle_dataset(root, 2, split="train", duration=8.0, seed=0)
    val = make_needle_dataset(root, 1, split="val", duration=8.0, seed=0, question_types=["mc"])
    text = root / "text.jsonl"
    text.write_text(
        json.dumps(
            {
                "id": "t",
                "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "bad",
                "video": "videos/missing.mp4",
                "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}],
            }
        )
        + "\n"
    )
    return root, train, val, text


def test_splits_and_batches(needle, tiny_tokenizer_dir):
    root, train, val, _ = needle
    dm = TempoDataModule(
        train, val_files=val, test_files=val, tokenizer=str(tiny_tokenizer_dir), batch_size=2
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, TempoBatch) and len(batch) == 2
    assert all(s.window == 4 and len(s) == 4 for s in batch.segments)  # 8 s → 16 frames → 4 windows
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch.answers[0] in "ABCD" and (val_batch.labels != -100).any()
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 1


def test_mixture_weights_and_max_samples(needle, tiny_tokenizer, caplog):
    root, train, _, text = needle
    dm = TempoDataModule(
        [{"path": str(train), "weight": 3.0}, {"path": str(text), "media_root": str(root), "weight": 1.0}],
        tokenizer=tiny_tokenizer,
        max_samples=8,
        seed=1,
    )
    dm.setup("fit")
    mix = dm.datasets["train"]
    assert len(mix) == 8 and mix.counts == [6, 2]
    with caplog.at_level(logging.WARNING, logger="tempo_kit.data"):
        kinds = [mix[i].kind for i in range(len(mix))]
        dm.teardown("fit")
    assert kinds.count("text") == 2  # the bad row is replaced by its neighbour (the text row)
    assert "missing.mp4" in caplog.text and dm.last_summary.startswith("1 samples skipped")


def test_the_tokenizer_is_passed_in(needle, tiny_tokenizer_dir):
    _, train, _, _ = needle
    with pytest.raises(ConfigError, match="TempoDataModule needs tokenizer=: the decoder's tokenizer"):
        TempoDataModule(train)
    dm = TempoDataModule(train, tokenizer=str(tiny_tokenizer_dir))
    dm.setup("fit")  # a folder is loaded with AutoTokenizer, no trainer or model attached
    assert dm.tokenizer.name_or_path == str(tiny_tokenizer_dir)


def test_config_errors(needle, tmp_path, tiny_tokenizer):
    _, train, _, _ = needle
    with pytest.raises(ConfigError, match="annotation file not found"):
        TempoDataModule(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="'path'"):
        TempoDataModule([{"file": str(train)}])
    with pytest.raises(ConfigError, match="on_error"):
        TempoDataModule(train, on_error="ignore")
    dm = TempoDataModule(train, tokenizer=tiny_tokenizer)
    assert dm.val_dataloader() == []  # no validation files: Lightning skips validation
    with pytest.raises(ConfigError, match="test_files"):
        dm.test_dataloader()


class CountingModule(L.LightningModule):
    """Consumes TempoBatches like a model would; counts segments and supervised tokens."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch: TempoBatch, _):
        self.seen.append((list(batch.ids), [len(s) for s in batch.segments]))
        return (self.weight * (batch.labels != -100).sum()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_fit_over_the_datamodule(needle, tiny_tokenizer, tmp_path):
    _, train, _, _ = needle
    dm = TempoDataModule(train, tokenizer=tiny_tokenizer, batch_size=2, num_workers=1, seed=0)
    module = CountingModule()
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    ids = sorted(i for batch_ids, _ in module.seen for i in batch_ids)
    assert len(module.seen) == 2 and len(ids) == 4 and len(set(ids)) == 4  # every row once per epoch


def test_a_training_file_with_no_usable_row_is_named_with_why(needle, tmp_path, tiny_tokenizer):
    _, train, _, _ = needle
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text('{"id": "1"}\n{"id": "2"}\n')
    for bad, why in ((empty, "the file holds no rows"), (invalid, "all 2 rows are invalid, e.g. malformed row: ")):
        dm = TempoDataModule([str(train), str(bad)], tokenizer=tiny_tokenizer)
        with pytest.raises(ConfigError, match=rf"^{bad}: no usable row was found: {why}"):
            dm.setup("fit")
