"""quiet_library_messages drops exactly the noise Lightning really emits in a kit run, only inside the block.

A tiny real Lightning run (Lightning's own BoringModel) triggers each known message: the
advertisement tips, torch's ``LeafSpec`` deprecation through Lightning's logging, the ``ckpt_path``
callback warning of ``validate``, and the mid-epoch resume warning. Outside the block every one
of them still appears (so a reworded message makes this test fail instead of leaking through).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from tempo_kit.quiet import KNOWN_NOISE, LIGHTNING_LOGGERS, TIP_PREFIX, quiet_library_messages


class LoggingModel(BoringModel):
    def validation_step(self, batch, batch_idx):
        out = super().validation_step(batch, batch_idx)
        self.log("val_x", out["x"])  # Lightning's result collection trips torch's LeafSpec deprecation
        return out


def lightning_run(root, quiet: bool, caplog) -> tuple[list[str], list[str]]:
    """(warning messages, Lightning info lines) of fit → validate --ckpt → resume mid-epoch."""
    trainer_args = dict(
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu"
    )
    with (
        warnings.catch_warnings(record=True) as caught,
        caplog.at_level(logging.INFO, logger=LIGHTNING_LOGGERS[0]),
    ):
        warnings.simplefilter("always")  # before the block's own filters, which then take precedence
        with quiet_library_messages() if quiet else contextlib.nullcontext():
            run_three_verbs(root, trainer_args)
            warnings.warn("a real problem", UserWarning, stacklevel=1)
    return [str(w.message) for w in caught], [r.getMessage() for r in caplog.records]


def run_three_verbs(root, trainer_args) -> None:
    """fit (a checkpoint every step) → validate from step 1's checkpoint → resume fit from it mid-epoch."""
    every_step = ModelCheckpoint(dirpath=root / "checkpoints", every_n_train_steps=1, save_top_k=-1)
    fit_args = dict(max_steps=2, limit_train_batches=4, limit_val_batches=1, **trainer_args)
    L.Trainer(callbacks=[every_step], **fit_args).fit(LoggingModel())
    first_step = str(root / "checkpoints" / "epoch=0-step=1.ckpt")
    L.Trainer(enable_checkpointing=False, limit_val_batches=1, **trainer_args).validate(
        LoggingModel(), ckpt_path=first_step
    )
    L.Trainer(enable_checkpointing=False, **fit_args).fit(LoggingModel(), ckpt_path=first_step)


@pytest.mark.slow
def test_drops_what_lightning_emits_and_nothing_else(tmp_path, caplog):
    loud_warnings, loud_lines = lightning_run(tmp_path / "loud", quiet=False, caplog=caplog)
    for pattern, _ in KNOWN_NOISE:  # each known message is really emitted by this Lightning
        assert any(re.search(pattern, message) for message in loud_warnings), pattern
    assert any(line.startswith(TIP_PREFIX) for line in loud_lines)
    caplog.clear()
    quiet_warnings, quiet_lines = lightning_run(tmp_path / "quiet", quiet=True, caplog=caplog)
    assert quiet_warnings == ["a real problem"]
    assert not any(line.startswith(TIP_PREFIX) for line in quiet_lines)
    assert any("GPU available" in line for line in quiet_lines)  # other info lines pass
