"""Ctrl-C during ``tempo-kit fit`` saves ``last.ckpt``, so ``--resume`` continues from that step.

Lightning catches the interrupt itself, tears the run down and exits with status 1; without this
callback the steps since the last periodic checkpoint (``trainer.checkpoint_every_n_steps``) are
lost. Single-process runs only: under DDP/FSDP saving is a collective that an interrupted rank
cannot join safely, so those runs keep their periodic checkpoints.
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
        trainer.save_checkpoint(self.path)
        print(
            f"\ninterrupted at step {trainer.global_step}: saved {self.path}; {self.resume_hint}",
            file=sys.stderr,
        )
