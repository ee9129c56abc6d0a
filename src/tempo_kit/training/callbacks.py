"""Per-optimizer-step logging: loss, learning rate per group, grad norm, samples/s, visual tokens.

Lightning logs per micro-batch; Tempo's recipes accumulate many micro-batches into one optimizer
step, so this callback logs once per step what that step saw: the mean loss over its
micro-batches and devices (the quantity the gradient is the gradient of), every named group's
learning rate, the gradient norm before clipping, throughput and visual tokens per sample.
Metrics go to every logger the recipe names (``trainer.loggers``: TensorBoard and the kit's
``metrics.jsonl`` by default) and, when nobody watches a terminal, to a printed progress line.
"""

from __future__ import annotations

import math
import time

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from tempo_kit.training.progress import ProgressLines


def global_grad_norm(module: torch.nn.Module, sharded: bool = False) -> float:
    """L2 norm of all gradients; with sharded parameters (FSDP) the squares are summed over ranks."""
    from torch.distributed.tensor import DTensor

    total = None
    for param in module.parameters():
        if param.grad is not None:
            grad = param.grad.to_local() if isinstance(param.grad, DTensor) else param.grad  # this rank's shard
            square = grad.detach().float().pow(2).sum()
            total = square if total is None else total + square
    if total is None:
        total = torch.zeros((), device=next(module.parameters()).device)
    if sharded and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(total)
    return float(total.sqrt())


def emit(trainer: Trainer, metrics: dict[str, float], step: int) -> None:
    """Send metrics to every logger of the recipe's ``trainer.loggers``, from rank 0."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


class StepLogger(Callback):
    """Logs the quantities of each optimizer step (see the module docstring).

    Reads the micro-batch statistics ``TempoModule`` accumulates in ``pl_module.step_stats``.

    Args:
        log_every_n_steps: log every n optimizer steps (the first step is always logged).
        progress: prints a progress line per logged step (runs outside a terminal), or None.
    """

    def __init__(self, log_every_n_steps: int = 1, progress: ProgressLines | None = None) -> None:
        self.every = max(1, int(log_every_n_steps))
        self.progress = progress
        self._pending: dict[str, float] | None = None
        self._last_time: float | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_time = time.perf_counter()
        if self.progress is not None:
            self.progress.started()

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer) -> None:
        stats = pl_module.take_step_stats()  # collective: every rank calls it
        from tempo_kit.training.strategies import is_fsdp

        metrics = {
            "train/loss": stats["loss"],
            "train/grad_norm": global_grad_norm(pl_module, sharded=is_fsdp(trainer.strategy)),
            "train/visual_tokens_per_sample": stats["visual_tokens_per_sample"],
            "train/samples": stats["samples"],
        }
        for index, group in enumerate(optimizer.param_groups):
            metrics[f"lr/{group.get('name', f'group{index}')}"] = float(group["lr"])
        self._pending = metrics

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx
    ) -> None:
        if self._pending is None:  # still accumulating
            return
        metrics, self._pending = self._pending, None
        now = time.perf_counter()
        elapsed = now - (self._last_time or now)
        self._last_time = now
        metrics["train/samples_per_s"] = metrics["train/samples"] / elapsed if elapsed > 0 else math.nan
        step = trainer.global_step
        if step % self.every == 0 or step == 1:
            emit(trainer, metrics, step)
        if self.progress is not None and trainer.is_global_zero:
            total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
            self.progress.step(step, int(total) if total < float("inf") else None, metrics)
