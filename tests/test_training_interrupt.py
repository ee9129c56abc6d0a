"""Ctrl-C during fit saves last.ckpt; Lightning's configuration errors become ConfigErrors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lightning.fabric.utilities.exceptions import MisconfigurationException

from tempo_kit.errors import ConfigError
from tempo_kit.training.commands import lightning_config_errors
from tempo_kit.training.interrupt import SaveOnInterrupt


def fake_trainer(world_size=1, global_step=7, completed=7, accumulate=1):
    from lightning.pytorch.loops.progress import _BatchProgress

    saved = []
    progress = _BatchProgress()
    for _ in range(completed):
        progress.increment_ready(), progress.increment_started()
        progress.increment_processed(), progress.increment_completed()
    trainer = SimpleNamespace(
        world_size=world_size,
        global_step=global_step,
        save_checkpoint=lambda p, weights_only: saved.append((p, progress.current.completed)),
        num_training_batches=100,
        accumulate_grad_batches=accumulate,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
    )
    return trainer, saved


def test_ctrl_c_saves_last_checkpoint_and_says_how_to_resume(tmp_path, capsys):
    path = tmp_path / "checkpoints" / "last.ckpt"
    trainer, saved = fake_trainer()
    SaveOnInterrupt(path).on_exception(trainer, None, KeyboardInterrupt())
    assert saved == [(path, 7)] and path.parent.is_dir()
    assert f"interrupted at step 7: saved {path}; rerun the command with --resume" in capsys.readouterr().err


def test_ctrl_c_mid_accumulation_saves_the_position_of_the_last_optimizer_step(tmp_path):
    trainer, saved = fake_trainer(global_step=2, completed=11, accumulate=4)  # 3 micro-batches not stepped
    SaveOnInterrupt(tmp_path / "last.ckpt").on_exception(trainer, None, KeyboardInterrupt())
    progress = trainer.fit_loop.epoch_loop.batch_progress
    assert saved == [(tmp_path / "last.ckpt", 8)]
    assert (progress.total.ready, progress.total.processed, progress.total.completed) == (8, 8, 8)


@pytest.mark.parametrize(
    ("trainer_kwargs", "exception"),
    [
        ({}, RuntimeError("a bug")),
        ({"world_size": 2}, KeyboardInterrupt()),
        ({"global_step": 0}, KeyboardInterrupt()),
    ],
)
def test_other_errors_multi_process_runs_and_step_zero_save_nothing(tmp_path, trainer_kwargs, exception):
    trainer, saved = fake_trainer(**trainer_kwargs)
    SaveOnInterrupt(tmp_path / "last.ckpt").on_exception(trainer, None, exception)
    assert saved == []


def test_resuming_past_max_epochs_is_a_config_error_with_the_fix():
    restored = "You restored a checkpoint with current_epoch=49, but you have set Trainer(max_epochs=3)."
    fix = r"current_epoch=49.*raise trainer\.max_epochs / trainer\.max_steps"
    with pytest.raises(ConfigError, match=fix), lightning_config_errors("fit", "run/checkpoints/last.ckpt"):
        raise MisconfigurationException(restored)
    other = r"bad setting — change the recipe's trainer settings"
    with pytest.raises(ConfigError, match=other), lightning_config_errors("validate", None):
        raise MisconfigurationException("bad setting")
