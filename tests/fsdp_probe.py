"""A recipe callback for the FSDP2 tests, loaded by name (``fsdp_probe:Probe``) in ``tempo-kit fit``.

It records what each rank holds once training starts and can stop a run like a crash would.
"""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch import Callback


class Probe(Callback):
    """Writes ``<out>/rank<r>.json`` (local and full parameter counts) at the start of training;
    raises at the start of step ``crash_at_step`` (after that step's checkpoint was written)."""

    def __init__(self, out: str, crash_at_step: int = -1) -> None:
        self.out = Path(out)
        self.crash_at_step = crash_at_step

    def on_train_start(self, trainer, pl_module) -> None:
        from tempo_kit.training.fsdp2 import local_numel

        model = pl_module.model
        record = {
            "local": local_numel(model),
            "full": sum(p.numel() for p in model.parameters()),  # a DTensor reports its full shape
            "world": trainer.world_size,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.crash_at_step:
            raise RuntimeError("simulated crash")
