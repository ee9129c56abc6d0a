"""Named parameter groups with per-part learning rates, AdamW, and warm-up + decay schedules.

Tempo trains its parts at different rates (Table A: the SVLM at 2e-6 while the LLM, projector
and memory tokens take 1e-5), so the optimiser holds one named group per trainable part; the
names show up in the learning-rate logs (``lr/<part>``). Schedules follow Hugging Face's
``get_cosine_schedule_with_warmup`` (warm-up steps = ceil(ratio × total)), with an optional floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from tempo_kit.training.trainability import part_of

#: Order of the groups in the optimiser (stable across runs so a resumed state matches).
GROUP_ORDER: tuple[str, ...] = ("compressor", "memory_tokens", "projector", "decoder")


def param_groups(model: nn.Module, lr: Mapping[str, float], weight_decay: float = 0.0) -> list[dict]:
    """One group per part with trainable parameters: ``{"name", "params", "lr", "weight_decay"}``."""
    grouped: dict[str, list[nn.Parameter]] = {part: [] for part in GROUP_ORDER}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = part_of(name)
        if part is None:
            raise ValueError(f"trainable parameter {name!r} belongs to no part ({', '.join(GROUP_ORDER)})")
        grouped[part].append(param)
    groups = []
    for part in GROUP_ORDER:
        if grouped[part]:
            groups.append(
                {
                    "name": part,
                    "params": grouped[part],
                    "lr": float(lr[part]),
                    "weight_decay": float(weight_decay),
                }
            )
    if not groups:
        raise ValueError("no trainable parameters: every part is frozen; set at least one trainable.<part>")
    return groups


def build_optimizer(
    groups: list[dict], betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
) -> torch.optim.AdamW:
    """AdamW over the named groups (Appendix C.1: weight decay 0)."""
    return torch.optim.AdamW(groups, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Hugging Face's rule: ``ceil(total × ratio)``."""
    return math.ceil(total_steps * warmup_ratio)


def lr_factor(
    step: int, total_steps: int, warmup: int, kind: str = "cosine", min_ratio: float = 0.0
) -> float:
    """Multiplier of each group's peak learning rate at optimiser step ``step`` (0-based).

    Linear warm-up from 0 over ``warmup`` steps, then ``cosine`` (half a cosine down to
    ``min_ratio``), ``linear`` (straight down to ``min_ratio``) or ``constant``.
    """
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif kind == "linear":
        decay = 1.0 - progress
    else:
        raise ValueError(f"unknown schedule {kind!r}; use cosine, linear or constant")
    return min_ratio + (1.0 - min_ratio) * decay


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_ratio: float = 0.03,
    kind: str = "cosine",
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` implementing :func:`lr_factor` for every group."""
    warmup = warmup_steps(total_steps, warmup_ratio)

    def factor(step: int) -> float:
        return lr_factor(step, total_steps, warmup, kind, min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
