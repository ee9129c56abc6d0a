"""Loggers, callbacks and progress lines from a recipe, checked before a run starts; validation
metrics weighted by samples (torchmetrics)."""

from __future__ import annotations

import io
import json

import pytest
import torch

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.metrics import choice_classes
from tempo_kit.recipes import load_recipe
from tempo_kit.training.loggers import JsonlLogger, build_loggers, logger_specs
from tempo_kit.training.progress import ProgressLines, clock, progress_line, use_progress_bar
from tempo_kit.training.recipe_callbacks import build_callbacks, callback_specs
from tempo_kit.training.scoring import computed_eval_metrics, eval_metrics


def test_progress_line_hand_worked():
    metrics = {"train/loss": 2.31044, "lr/compressor": 1e-4, "lr/decoder": 2.9e-3, "train/samples_per_s": 11.84}
    # 16 of 48 steps in 41 s: 41 / 16 × 32 = 82 s left
    assert progress_line(16, 48, metrics, 41.0) == (
        "step 16/48 | loss 2.3104 | lr 2.90e-03 | 11.8 samples/s | elapsed 0:00:41 | ETA 0:01:22"
    )
    assert progress_line(3, None, {}, 5.0) == "step 3 | elapsed 0:00:05"  # unknown total: no ETA
    assert clock(float("nan")) == "--:--:--" and clock(3725) == "1:02:05"


def test_progress_lines_every_n_and_first_and_last():
    stream = io.StringIO()
    lines = ProgressLines(every=4, stream=stream)
    lines.started()
    for step in range(1, 11):
        lines.step(step, 10, {"train/loss": 1.0})
    assert [row.split(" | ")[0] for row in stream.getvalue().splitlines()] == [
        "step 1/10", "step 4/10", "step 8/10", "step 10/10"
    ]  # fmt: skip


def test_progress_bar_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert use_progress_bar(True, Terminal()) and not use_progress_bar(False, Terminal())
    assert not use_progress_bar(True, io.StringIO())  # a file or a pipe: lines instead


def test_validation_loss_is_weighted_by_samples():
    metrics = eval_metrics()
    metrics["loss"].update(torch.tensor(1.0), weight=4)  # a batch of 4 samples, mean loss 1
    metrics["loss_samples"].update(4)
    metrics["loss"].update(torch.tensor(4.0), weight=1)  # a last batch of 1 sample, loss 4
    metrics["loss_samples"].update(1)
    metrics["accuracy"].update(*choice_classes(["A", "C", None], ["A", "C", "B"]))  # 2 right, 1 unread
    metrics["scored"].update(3)
    out = computed_eval_metrics(metrics, "val")
    # (4 × 1 + 1 × 4) / 5 = 1.6, where a mean of batch means would say 2.5
    assert out == pytest.approx({"val/loss": 1.6, "val/accuracy": 2 / 3, "val/scored": 3.0})
    assert type(out["val/scored"]) is int  # a count prints as one (`val/scored: 3`)
    assert computed_eval_metrics(metrics, "val") == {}  # reset after compute


def test_jsonl_logger_appends_one_object_per_call(tmp_path):
    logger = JsonlLogger(tmp_path)
    logger.log_metrics({"train/loss": torch.tensor(0.5)}, step=1)
    logger.log_metrics({"val/loss": 0.25}, step=2)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 1, "train/loss": 0.5}, {"step": 2, "val/loss": 0.25}]
    from lightning.pytorch.loggers import Logger

    resumed = JsonlLogger(tmp_path)  # a resumed run continues the same file
    assert isinstance(resumed, Logger)
    resumed.log_metrics({"train/loss": 0.125}, step=3)
    assert (tmp_path / "metrics.jsonl").read_text().splitlines()[-1] == '{"step": 3, "train/loss": 0.125}'


def test_logger_and_callback_specs(tmp_path):
    assert logger_specs(["csv", {"name": "tensorboard", "name_suffix": "x"}]) == [
        {"name": "csv"}, {"name": "tensorboard", "name_suffix": "x"}
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"unknown logger 'tensorbord' \(did you mean 'tensorboard'\?\)"):
        logger_specs(["tensorbord"])
    loggers = build_loggers(["csv", "jsonl"], tmp_path, "run")
    from lightning.pytorch.loggers import CSVLogger

    from tempo_kit.training.loggers import logger_name

    assert [logger_name(logger) for logger in loggers] == ["csv", "jsonl"] and isinstance(loggers[0], CSVLogger)
    (monitor,) = build_callbacks([{"name": "LearningRateMonitor", "logging_interval": "step"}])
    assert type(monitor).__name__ == "LearningRateMonitor" and monitor.logging_interval == "step"
    with pytest.raises(ConfigError, match=r"'EarlyStoping' is not a callback .*\(did you mean 'EarlyStopping'\?\)"):
        callback_specs([{"name": "EarlyStoping"}])
    with pytest.raises(ConfigError, match=r"EarlyStopping\) got unknown argument 'monitr'"):
        callback_specs([{"name": "EarlyStopping", "monitr": "val/loss"}])
    with pytest.raises(ConfigError, match="cannot import 'no_such_module:Thing'"):
        callback_specs(["no_such_module:Thing"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.loggers=[wandbb]", r"unknown logger 'wandbb' \(did you mean 'wandb'\?\)"),
        ("trainer.callbacks=[{name: ModelSummry}]", r"did you mean 'ModelSummary'"),
        ("trainer.profiler=simpel", r"trainer.profiler='simpel' \(did you mean 'simple'\?\): use one of None, simple, advanced, pytorch"),
        ("optim.min_lr_ratio=0.1", None),  # a floor under cosine is fine
        ("optim.scheduler=linear", None),
    ],
)
def test_recipe_trainer_keys_are_checked_before_a_run(override, message):
    if message is None:
        load_recipe("stage2", [override], check_paths=False)
        return
    with pytest.raises(ConfigError, match=message):
        load_recipe("stage2", [override], check_paths=False)


def test_a_floor_needs_the_cosine_schedule():
    with pytest.raises(ConfigError, match="optim.min_lr_ratio=0.1 is a floor of the cosine schedule"):
        load_recipe("stage2", ["optim.scheduler=linear", "optim.min_lr_ratio=0.1"], check_paths=False)


def test_lightnings_name_for_the_loggers_key_is_taken_and_a_typo_is_suggested():
    assert load_recipe("stage2", ["trainer.logger=wandb"], check_paths=False).trainer.loggers == "wandb"
    with pytest.raises(ConfigError, match=r"unknown key 'trainer.loger' \(did you mean 'loggers'"):
        load_recipe("stage2", ["trainer.loger=wandb"], check_paths=False)
