"""A fit run as a user launches it from a batch job: shipped recipe by name, several trackers at
once (offline), a recipe callback, stdout not a terminal, one unreadable sample."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fit_run(tiny_checkpoints, tiny_needle_benchmark, tmp_path_factory):
    pytest.importorskip("wandb", reason="wandb is in the kit's [trackers] extra")
    pytest.importorskip("mlflow", reason="mlflow is in the kit's [trackers] extra")
    work = tmp_path_factory.mktemp("trackers")
    rows = Path(tiny_needle_benchmark).read_text().splitlines()
    bad = json.loads(rows[0]) | {"id": "missing-video", "video": "videos/not_there.mp4"}
    data = Path(tiny_needle_benchmark).parent / "train_with_a_bad_row.jsonl"
    data.write_text("\n".join([*rows, json.dumps(bad)]) + "\n")
    out, tmp = work / "run", work / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),  # where the skips file used to go: the run must leave nothing there
        "WANDB_CONFIG_DIR": str(work / "wandb-config"),
        "WANDB_CACHE_DIR": str(work / "wandb-cache"),
        "WANDB_DATA_DIR": str(work / "wandb-data"),
    }
    command = [
        sys.executable, "-m", "tempo_kit.cli", "fit", "--recipe", "demo",
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=4", "model.budget=16",
        f"run.output_dir={out}", f"data.train_files={data}", "data.val_files=null",
        "data.max_long_edge=64", "data.num_workers=0",
        "trainer.global_batch_size=1", "trainer.micro_batch_size=1", "trainer.max_steps=4",
        "trainer.log_every_n_steps=2", "trainer.limit_train_batches=4",
        "trainer.loggers=[tensorboard, csv, jsonl, {name: wandb, offline: true}, mlflow]",
        "trainer.callbacks=[{name: LearningRateMonitor, logging_interval: step}]",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    done.env = env
    return out, tmp, done


def test_every_named_logger_writes_its_files(fit_run):
    out, _, _ = fit_run
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    with open(out / "csv" / "metrics.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {"train/loss", "step"} <= set(table[0])
    assert any(k.startswith("lr-AdamW") for k in table[0])  # the recipe's LearningRateMonitor
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "train/loss" in row] == [1, 2, 4]  # first, then every 2nd
    assert any("lr-AdamW/decoder" in row for row in rows)  # the monitor logs through the same loggers
    assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "demo"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 4]


def test_outside_a_terminal_progress_is_printed_as_lines(fit_run):
    _, _, done = fit_run
    lines = [line for line in done.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(" | ")[0] for line in lines] == ["step 1/4", "step 2/4", "step 4/4"]
    assert all(" | loss " in line and " samples/s " in line and " | ETA " in line for line in lines)
    assert "Loading weights" not in done.stderr + done.stdout  # no Hugging Face loading bars


def test_fit_ends_by_saying_where_everything_is(fit_run):
    out, _, done = fit_run
    summary = done.stdout[done.stdout.index("run folder:") :]
    assert f"final model (run.init_from of the next stage, tempo-kit infer --model): {out / 'final'}" in summary
    assert f"checkpoints (tempo-kit fit --resume): {out / 'checkpoints'}" in summary
    for name in ("tensorboard", "csv", "jsonl", "wandb", "mlflow", "skipped samples"):
        assert f"  {name} logs: " in summary or f"  {name}: " in summary, name


def test_skipped_samples_go_to_the_run_folder_not_tmp(fit_run):
    out, tmp, _ = fit_run
    skipped = [json.loads(line) for line in (out / "skips.jsonl").read_text().splitlines()]
    assert [(row["sample"].rsplit("/", 1)[-1], Path(row["path"]).name) for row in skipped] == [
        ("train_with_a_bad_row.jsonl:5", "not_there.mp4")  # file:line of the row, and the missing video
    ]
    assert not list(tmp.glob("tempo-kit-skips-*"))


def test_resume_continues_the_csv_file_the_wandb_run_and_the_mlflow_run(fit_run, tmp_path):
    """A pre-empted run resumed: one continuous run in every tracker, earlier rows intact."""
    import shutil

    from mlflow import MlflowClient

    first, _, done = fit_run
    out = shutil.copytree(first, tmp_path / "run")  # the finished 4-step run, continued to step 6
    before = (out / "csv" / "metrics.csv").read_text().splitlines()
    command = [*done.args[:-2], f"run.output_dir={out}", *done.args[-2:]]
    command += ["trainer.max_steps=6", "--resume", "last"]
    resumed = subprocess.run(command, env=done.env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    with open(out / "csv" / "metrics.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in table if row["train/loss"]] == [1, 2, 4, 6], resumed.stdout[-2000:]
    rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert rows[1 : len(before)] == before[1:]  # the earlier rows as they were (the header may grow)
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({run.name.rsplit("-", 1)[1] for run in runs}) == 1  # one W&B run id
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "demo"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 4, 6]
