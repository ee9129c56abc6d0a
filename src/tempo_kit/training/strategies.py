"""Distributed strategies from a recipe's ``trainer.strategy`` mapping: auto, single, ddp, fsdp.

``fsdp`` is PyTorch's FSDP2 (``fully_shard``) driven by Lightning's ``ModelParallelStrategy``
(:mod:`tempo_kit.training.fsdp2`, :mod:`tempo_kit.training.sharded_checkpoint`): every
transformer block of the SVLM and of the LLM is a unit. Which classes those are is read from the
built model — each component's ``decoder_layer_classes`` or, failing that, its Hugging Face
models' ``_no_split_modules`` — so no class names are needed in the recipe and any registered
backbone works. It runs on GPUs (NCCL) and on CPUs (gloo). Multi-node runs use Lightning's
launchers: ``torchrun`` or SLURM set the environment, the recipe sets ``trainer.num_nodes`` and
``trainer.devices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from tempo_kit.errors import ConfigError


def layer_classes(root: nn.Module) -> set[type[nn.Module]]:
    """Transformer-block classes inside ``root``: declared by components or by HF models."""
    classes: set[type[nn.Module]] = set()
    names: set[str] = set()
    for module in root.modules():
        declared = getattr(module, "decoder_layer_classes", None)
        if isinstance(declared, (set, tuple, list, frozenset)):
            classes.update(c for c in declared if isinstance(c, type))
        no_split = getattr(module, "_no_split_modules", None)
        if isinstance(no_split, (list, tuple, set)):
            names.update(no_split)
    if names:
        classes.update(type(m) for m in root.modules() if type(m).__name__ in names)
    return classes


def build_strategy(spec: Mapping[str, Any], precision: str) -> Any:
    """A Lightning strategy (object or name) from ``trainer.strategy``.

    Args:
        spec: ``{name: auto | single | ddp | fsdp, process_group_backend, ddp: {...}, fsdp: {...}}``;
            only the named strategy's options are used.
        precision: the trainer precision (FSDP2's mixed-precision policy follows it).
    """
    name = spec.get("name", "auto")
    backend = spec.get("process_group_backend")
    common = {} if backend is None else {"process_group_backend": backend}
    if name == "auto":
        return "auto"
    if name == "single":
        return "single_device"
    if name == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(**common, **dict(spec.get("ddp") or {}))
    if name == "fsdp":
        from tempo_kit.training.sharded_checkpoint import FSDP2Strategy

        return FSDP2Strategy(precision, dict(spec.get("fsdp") or {}), **common)
    raise ConfigError(f"trainer.strategy.name={name!r} must be auto, single, ddp or fsdp")


def is_fsdp(strategy: Any) -> bool:
    """Whether ``strategy`` shards the model (the kit's FSDP2 strategy)."""
    from tempo_kit.training.sharded_checkpoint import FSDP2Strategy

    return isinstance(strategy, FSDP2Strategy)


def trainer_precision(spec: Mapping[str, Any], precision: str) -> str:
    """The precision Lightning applies: under ``fsdp`` FSDP2's mixed-precision policy casts, so
    Lightning runs in float32 (no autocast on top of the policy)."""
    if spec.get("name") == "fsdp":
        from tempo_kit.training.fsdp2 import param_dtype

        param_dtype(precision)  # refuses precisions FSDP2 is not set up for
        return "32-true"
    return precision
