"""Ctrl-C during ``tempo-kit fit`` saves ``last.ckpt``, so ``--resume`` continues from that step.

Lightning catches the interrupt itself, tears the run down and exits with status 1; without this
callback the steps since the last periodic checkpoint (``trainer.checkpoint_every_n_steps``) are
lost. Single-process runs only: under DDP/FSDP saving is a collective that an interrupted rank
cannot join safely, so those runs keep their periodic checkpoints.

Micro-batches accumulated since the last optimizer step are not in any weight yet: the saved
position is moved back to that step, so the resumed run trains them again and ends with the
weights of a run that never stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer


class SaveOnInterrupt(Callback):
    """On ``KeyboardInterrupt``, write ``path`` (the run's ``last.ckpt``) and say how to resume."""

    def __init__(self, path: str | Path, resume_hint: str = "rerun the command with --resume") -> None:
        self.path = Path(path)
        self.resume_hint = resume_hint

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.world_size > 1:
            return
        if trainer.global_step == 0:
            return  # nothing trained yet: no checkpoint to resume from
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rewind_to_optimizer_step(trainer)
        trainer.save_checkpoint(self.path, weights_only=False)
        print(
            f"\ninterrupted at step {trainer.global_step}: saved {self.path}; {self.resume_hint}",
            file=sys.stderr,
        )


def rewind_to_optimizer_step(trainer: Trainer) -> None:
    """Set the epoch's batch counters back to the last optimizer step (drops a partial accumulation)."""
    batches = trainer.fit_loop.epoch_loop.batch_progress
    done = batches.current.completed
    if done >= trainer.num_training_batches:
        return  # the epoch's last (possibly short) window has stepped
    target = done - done % trainer.accumulate_grad_batches
    for field in ("ready", "started", "processed", "completed"):
        delta = getattr(batches.current, field) - target
        setattr(batches.current, field, target)
        setattr(batches.total, field, getattr(batches.total, field) - delta)
