"""Named parameter groups with per-part learning rates, AdamW, and warm-up + decay schedules.

Tempo trains its parts at different rates (Table A: the SVLM at 2e-6 while the LLM, projector
and memory tokens take 1e-5), so the optimiser holds one named group per trainable part; the
names show up in the learning-rate logs (``lr/<part>``). Schedules are transformers' own
(``get_cosine_schedule_with_warmup`` and its siblings; warm-up steps = ceil(ratio × total)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from tempo_kit.parts import TRAINABLE_PARTS as GROUP_ORDER
from tempo_kit.training.trainability import part_of


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


#: ``optim.scheduler`` names → the transformers schedule behind each (all with linear warm-up).
SCHEDULES: tuple[str, ...] = ("cosine", "linear", "constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_ratio: float = 0.03,
    kind: str = "cosine",
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' per-step schedule for every group: linear warm-up, then ``kind``.

    ``cosine`` is ``get_cosine_with_min_lr_schedule_with_warmup`` (half a cosine down to
    ``min_ratio`` × each group's peak; 0 gives ``get_cosine_schedule_with_warmup``), ``linear``
    ``get_linear_schedule_with_warmup`` (down to 0), ``constant``
    ``get_constant_schedule_with_warmup``. Only cosine has a floor.
    """
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_with_min_lr_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    warmup = warmup_steps(total_steps, warmup_ratio)
    if kind != "cosine" and min_ratio:
        raise ValueError(f"a learning-rate floor (min_lr_ratio={min_ratio}) needs the cosine schedule, not {kind}")
    if kind == "cosine":
        return get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, warmup, total_steps, min_lr_rate=float(min_ratio)
        )
    if kind == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    raise ValueError(f"unknown schedule {kind!r}; use {', '.join(SCHEDULES)}")
