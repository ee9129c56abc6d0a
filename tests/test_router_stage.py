"""The LoRA router stage end to end on CPU: train, export, measure with ``tempo-kit route``, answer with the export.

The small version of the Table 2 experiment (``benchmarks/table2_router.py``): a random tiny SVLM
learns, in a few LoRA steps on 20-s needle videos (10 segments), to score the needle's segments above the rest on
held-out videos, and ATA then gives the needle more tokens than uniform allocation does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture(scope="module")
def needle_videos(tmp_path_factory):
    from tempo_kit.data.synthetic import make_needle_dataset

    root = tmp_path_factory.mktemp("router_needle")
    common = {"duration": 20.0, "fps": 2.0, "size": (32, 32), "needle_duration": 4.0,
              "categories": ("colour",), "question_types": ("open",), "seed": 0}  # fmt: skip
    return {
        "train": make_needle_dataset(root, 12, split="train", **common),
        "test": make_needle_dataset(root, 4, split="test", **common),
    }


@pytest.mark.slow
def test_router_stage_separates_needle_segments_and_ata_routes_to_them(
    tiny_checkpoints, needle_videos, tmp_path, capsys
):
    from tempo_kit.cli import main
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import FINAL_DIR, run_recipe

    out = tmp_path / "router"
    overrides = [
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=4",
        "run.init_from=null",
        f"run.output_dir={out}",
        f"data.train_files={needle_videos['train']}",
        f"data.val_files={needle_videos['test']}",
        "data.max_frames=40",
        "data.num_workers=0",
        "data.backend=pyav",
        "data.preprocessing=qwen3_vl",  # the released chain upscales 32x32 frames to ≥ 131072 pixels
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
        "lora.compressor.r=8",
        "lora.compressor.lora_alpha=16",
        "lora.compressor.lora_dropout=0",
        "optim.lr.compressor=5.0e-3",
        "optim.warmup_ratio=0.1",
    ]
    metrics = run_recipe(to_dict(load_recipe(RECIPES / "router_lora.yaml", overrides)), "fit")
    assert metrics["val/auroc"] >= 0.9, metrics  # logged by the training module on held-out videos

    report_dir = tmp_path / "route"
    command = ["route", "--model", str(out / FINAL_DIR), "--annotations", str(needle_videos["test"]),
               "--output", str(report_dir), "--window", "4", "--backend", "pyav", "--budget", "15", "--plots", "1"]  # fmt: skip
    assert main(command) == 0
    report = json.loads((report_dir / "routing.json").read_text())
    assert report["overall"]["auroc"] >= 0.9
    assert report["overall"]["auroc"] == pytest.approx(metrics["val/auroc"], abs=1e-4)
    assert (report_dir / "roc.png").is_file() and len(list((report_dir / "allocation").glob("*.png"))) == 1
    # 10 segments of at most 4 tokens under a budget of 15 (1.5 per segment): the needle's share
    assert main([*command, "--output", str(tmp_path / "uniform"), "--allocator", "uniform"]) == 0
    uniform = json.loads((tmp_path / "uniform" / "routing.json").read_text())
    ata_recall = report["overall"]["budgets"]["15"]["needle_recall"]
    uniform_recall = uniform["overall"]["budgets"]["15"]["needle_recall"]
    assert uniform_recall == pytest.approx(1 / 4)  # 15 // 10 = 1 token of 4 per segment
    assert ata_recall > uniform_recall
    capsys.readouterr()

    # the export answers through the session API unchanged (merged LoRA, plain compressor)
    pipeline = TempoPipeline.from_pretrained(out / FINAL_DIR)
    row = json.loads(needle_videos["test"].read_text().splitlines()[0])
    result = pipeline.answer(video=needle_videos["test"].parent / row["video"], query=row["question"],
                             budget=15, max_new_tokens=2, backend="pyav", progress=False)  # fmt: skip
    assert result.allocation.counts.sum() <= 15


def _rows_file(benchmark: Path, path: Path, edits: list[dict]) -> Path:
    """The benchmark's first row, once per edit (``None`` values drop the key), with absolute video paths."""
    row = json.loads(benchmark.read_text().splitlines()[0])
    row["video"] = str(benchmark.parent / row["video"])
    lines = []
    for number, edit in enumerate(edits):
        changed = {**row, "id": f"row-{number}", **edit}
        lines.append(json.dumps({k: v for k, v in changed.items() if v is not None}) + "\n")
    path.write_text("".join(lines))
    return path


def test_the_router_stage_counts_rows_without_spans_or_with_bad_ones_as_skips(
    tiny_needle_benchmark, tiny_tokenizer_dir, tmp_path
):
    from tempo_kit.data.datamodule import TempoDataModule

    rows = _rows_file(
        tiny_needle_benchmark,
        tmp_path / "mixed.jsonl",
        [
            {},  # the needle's own span
            {"relevant_spans": None},  # no spans: nothing to learn routing from
            {"relevant_spans": [[5.0, 2.0]]},  # end before start
            {"relevant_spans": [[40.0, 41.0]]},  # the row's duration is 12 s
        ],
    )
    data = TempoDataModule(train_files=rows, tokenizer=tiny_tokenizer_dir, backend="pyav", require_spans=True)
    data.setup("fit")
    assert [r.id for part in data.datasets["train"].datasets for r in part.records] == ["row-0"]
    reasons = {r.sample.rsplit(":", 1)[-1]: r.reason for r in data.skip_log.records}
    assert set(reasons) == {"2", "3", "4"}, reasons
    assert "no relevant_spans" in reasons["2"]
    assert "ends before it starts" in reasons["3"]
    assert "starts at or after the end of the video (12.00 s)" in reasons["4"]


def test_the_router_stage_refuses_a_file_without_any_spans_naming_it(
    tiny_needle_benchmark, tiny_tokenizer_dir, tmp_path
):
    from tempo_kit.data.datamodule import TempoDataModule
    from tempo_kit.errors import ConfigError

    rows = _rows_file(tiny_needle_benchmark, tmp_path / "plain.jsonl", [{"relevant_spans": None}] * 3)
    data = TempoDataModule(train_files=rows, tokenizer=tiny_tokenizer_dir, backend="pyav", require_spans=True)
    with pytest.raises(ConfigError) as error:
        data.setup("fit")
    message = str(error.value)
    assert "\n" not in message and str(rows) in message
    assert "none of its 3 rows is a video row with relevant_spans" in message
    assert len(data.skip_log) == 3
