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
    params = client.get_run(run.info.run_id).data.params  # the changed max_steps is kept, not lost
    assert params["recipe/trainer/max_steps"] == "4" and params["resume1/recipe/trainer/max_steps"] == "6"
    assert "resume1/recipe/model/budget" not in params  # unchanged values are not logged again


def test_a_continued_mlflow_run_logs_changed_parameters_under_resume_keys(tmp_path):
    """The real MLflow store: a run continued twice with changed values holds every value, none lost."""
    pytest.importorskip("mlflow", reason="mlflow is in the kit's [trackers] extra")
    from mlflow import MlflowClient

    from tempo_kit.training.loggers import build_loggers

    def log(recipe, run_id=None):
        if run_id is not None:
            (tmp_path / "tracker_runs.json").write_text(json.dumps({"mlflow": run_id}))
        (logger,) = build_loggers(["mlflow"], tmp_path, "exp")
        logger.log_hyperparams({"recipe": recipe})
        return logger.run_id

    run_id = log({"trainer": {"max_steps": 4}, "lr": 0.001})
    assert log({"trainer": {"max_steps": 6}, "lr": 0.001}, run_id) == run_id
    log({"trainer": {"max_steps": 8}, "lr": 0.001, "seed": 3}, run_id)
    params = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).data.params
    assert params == {
        "recipe/trainer/max_steps": "4", "recipe/lr": "0.001", "resume1/recipe/trainer/max_steps": "6",
        "resume2/recipe/trainer/max_steps": "8", "recipe/seed": "3",
    }  # fmt: skip


def test_a_changed_parameter_on_each_resume_gets_the_next_resume_key():
    """New keys as they are; a changed value as ``resume<n>/key``, n counting the resumes that changed
    one; an unchanged value (also one changed back to what the last resume logged) logs nothing."""
    from tempo_kit.training.loggers import changed_params

    logged = {"lr": "0.001", "steps": "4"}
    assert changed_params({"lr": 0.001, "steps": 6, "seed": 1}, logged) == {"resume1/steps": 6, "seed": 1}
    logged |= {"resume1/steps": "6", "seed": "1"}
    assert changed_params({"lr": 0.001, "steps": 6, "seed": 1}, logged) == {}
    assert changed_params({"lr": 0.01, "steps": 4, "seed": 1}, logged) == {"resume2/lr": 0.01, "resume2/steps": 4}
    logged |= {"resume2/lr": "0.01", "resume2/steps": "4", "resume10/steps": "9"}
    assert changed_params({"steps": 4}, logged) == {"resume11/steps": 4}  # resume10's 9 is the latest


def test_a_kill_after_the_last_checkpoint_then_resume_logs_each_step_once(
    tiny_checkpoints, tiny_needle_benchmark, tmp_path, kill_once_written
):
    """Killed after logging steps past its last checkpoint, a resumed run logs those steps again:
    the CSV and JSON-lines files keep each step once, the earlier rows as they were."""
    import torch

    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "tempo_kit.cli", "fit", "--recipe", "demo",
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=4", "model.budget=16",
        f"run.output_dir={out}", f"data.train_files={tiny_needle_benchmark}", "data.val_files=null",
        "data.max_long_edge=64", "data.num_workers=0",
        "trainer.global_batch_size=1", "trainer.micro_batch_size=1", "trainer.max_steps=8",
        "trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.log_every_n_steps=1",
        "trainer.checkpoint_every_n_steps=3", "trainer.enable_progress_bar=false",
        "trainer.loggers=[jsonl, {name: csv, flush_logs_every_n_steps: 1}]",
    ]  # fmt: skip
    kill_once_written(command, out / "metrics.jsonl", 4, 600)  # steps 1..4 logged; checkpoint at 3
    resumed_from = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(logged) > resumed_from, (logged, resumed_from)  # the case: rows past the checkpoint
    before = (out / "metrics.jsonl").read_text().splitlines()
    resumed = subprocess.run([*command, "--resume", "last"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    rows = (out / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in rows if "train/loss" in json.loads(line)]
    assert steps == list(range(1, 9))
    kept = [line for line in before if json.loads(line)["step"] <= resumed_from]
    assert rows[: len(kept)] == kept
    with open(out / "csv" / "metrics.csv") as handle:
        table = [row for row in csv.DictReader(handle) if row.get("train/loss")]
    assert [int(row["step"]) for row in table] == list(range(1, 9))


def test_rows_up_to_keeps_rows_without_a_step_and_leaves_a_short_file_alone(tmp_path):
    from tempo_kit.training.loggers import rows_up_to

    table = tmp_path / "metrics.csv"
    table.write_text("epoch,step,train/loss\n0,1,2.5\n0,2,2.4\n0,,9\n0,3,2.3\n")
    rows_up_to(table, 2)
    assert table.read_text() == "epoch,step,train/loss\n0,1,2.5\n0,2,2.4\n0,,9\n"
    lines = tmp_path / "metrics.jsonl"
    lines.write_text('{"step": 1}\n{"step": 3}\n{"note": 1}\n')
    rows_up_to(lines, 2)
    assert lines.read_text() == '{"step": 1}\n{"note": 1}\n'
    stamp = lines.stat().st_mtime_ns
    rows_up_to(lines, 2)  # nothing past the step: the file is not rewritten
    assert lines.stat().st_mtime_ns == stamp
