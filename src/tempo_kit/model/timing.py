"""Per-phase wall-clock times of a model call, each phase's GPU work included in its own time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def synchronize(module: nn.Module) -> None:
    """Wait for the GPU work queued by ``module``, so a phase is not billed for the one before."""
    parameter = next(module.parameters(), None)
    if parameter is not None and parameter.device.type == "cuda":
        torch.cuda.synchronize(parameter.device)


class PhaseTimer:
    """Collects ``{phase: seconds}``; ``with timer.phase("allocate"): ...`` adds to one phase."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.module)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
