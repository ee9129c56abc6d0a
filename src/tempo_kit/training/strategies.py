"""Distributed strategies from a recipe's ``trainer.strategy`` mapping: auto, single, ddp, fsdp.

FSDP wraps (and, with gradient checkpointing on, checkpoints) every transformer block of the SVLM
and of the LLM. Which classes those are is read from the built model — each component's
``decoder_layer_classes`` or, failing that, its Hugging Face models' ``_no_split_modules`` — so the
policy needs no class names in the recipe and works for any registered backbone. Lightning builds
the model in ``configure_model()`` before wrapping, so the policy sees real modules.
Multi-node runs use Lightning's launchers: ``torchrun`` or SLURM set the environment, the recipe
sets ``trainer.num_nodes`` and ``trainer.devices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
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


class LayerPolicy:
    """FSDP auto-wrap / activation-checkpointing policy: every transformer block of the model.

    The classes are collected from the root module on the first call (FSDP calls the policy on
    the root first), so the policy can be made before the model exists.
    """

    def __init__(self, classes: set[type[nn.Module]] | None = None) -> None:
        self.classes: tuple[type[nn.Module], ...] | None = tuple(classes) if classes else None

    def __call__(self, module: nn.Module, recurse: bool, nonwrapped_numel: int = 0, **_: Any) -> bool:
        if self.classes is None:
            found = layer_classes(module)
            if not found:
                raise ConfigError(
                    "trainer.strategy.name=fsdp: found no transformer-block classes to wrap in the model "
                    "(components declare them with `decoder_layer_classes`)"
                )
            self.classes = tuple(found)
        if recurse:
            return True
        return isinstance(module, self.classes)


def _mixed_precision(precision: str):
    """FSDP mixed precision for bf16/fp16 runs; buffers stay float32 (the relevance direction is fp32)."""
    from torch.distributed.fsdp import MixedPrecision

    dtype = {"bf16-mixed": torch.bfloat16, "bf16-true": torch.bfloat16, "16-mixed": torch.float16}.get(
        precision
    )
    if dtype is None:
        return None
    return MixedPrecision(param_dtype=dtype, reduce_dtype=dtype, buffer_dtype=torch.float32)


def build_strategy(spec: Mapping[str, Any], precision: str, gradient_checkpointing: bool) -> Any:
    """A Lightning strategy (object or name) from ``trainer.strategy``.

    Args:
        spec: ``{name: auto | single | ddp | fsdp, process_group_backend, ddp: {...}, fsdp: {...}}``;
            only the named strategy's options are used.
        precision: the trainer precision (FSDP mixed precision follows it).
        gradient_checkpointing: FSDP applies activation checkpointing to the wrapped blocks.
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
        from lightning.pytorch.strategies import FSDPStrategy

        options = dict(spec.get("fsdp") or {})
        return FSDPStrategy(
            auto_wrap_policy=LayerPolicy(),
            activation_checkpointing_policy=LayerPolicy() if gradient_checkpointing else None,
            mixed_precision=_mixed_precision(precision),
            use_orig_params=True,  # named parameter groups and frozen/trainable mixes per unit
            sharding_strategy=options.pop("sharding_strategy", "FULL_SHARD"),
            state_dict_type=options.pop("state_dict_type", "sharded"),
            cpu_offload=bool(options.pop("cpu_offload", False)),
            **common,
            **options,
        )
    raise ConfigError(f"trainer.strategy.name={name!r} must be auto, single, ddp or fsdp")


def is_fsdp(strategy: Any) -> bool:
    from lightning.pytorch.strategies import FSDPStrategy

    return isinstance(strategy, FSDPStrategy)
