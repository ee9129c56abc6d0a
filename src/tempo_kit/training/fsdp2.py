"""FSDP2 (``torch.distributed.fsdp.fully_shard``) applied to a ``TempoModel``: what ``fsdp`` means.

Each transformer block of the SVLM's vision tower, of its language model and of the LLM becomes
its own FSDP unit, then the whole model becomes the root unit (embeddings, norms, the projector,
the memory tokens, the relevance direction). Parameter names do not change (FSDP2 swaps
parameters for ``DTensor`` shards in place), so named parameter groups, trainability and the
kit's save format see the same names as in a single-process run. Frozen and trainable parameters
may share a unit, and LoRA adapters injected before sharding are sharded with their block.

The blocks are read from the model (:func:`~tempo_kit.training.strategies.layer_classes`), so a
registered backbone is sharded without naming classes in the recipe; a component with no blocks
to shard is refused before any process starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tempo_kit.errors import ConfigError

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh

#: ``trainer.precision`` → the dtype FSDP2 computes in (parameters are all-gathered in it);
#: gradients are reduced in float32 either way (:data:`REDUCE_DTYPE`).
PARAM_DTYPES: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
    "bf16-true": torch.bfloat16,
}
#: Gradient reduction dtype under FSDP2: float32, so bf16 compute loses nothing in the all-reduce.
REDUCE_DTYPE = torch.float32
#: ``trainer.strategy.fsdp.sharding_strategy`` → FSDP2's ``reshard_after_forward``.
RESHARD_AFTER_FORWARD: dict[str, bool] = {"FULL_SHARD": True, "SHARD_GRAD_OP": False}
#: Model methods that run the model outside ``forward`` (FSDP2 must gather the root's parameters).
FORWARD_METHODS: tuple[str, ...] = ("compress", "generate")
#: The parts that must hold transformer blocks to shard.
SHARDED_PARTS: tuple[str, ...] = ("compressor", "decoder")


def param_dtype(precision: str) -> torch.dtype | None:
    """The compute dtype of ``trainer.precision`` under FSDP2 (``None``: float32 throughout)."""
    if precision not in PARAM_DTYPES:
        raise ConfigError(
            f"trainer.precision={precision!r} is not supported with trainer.strategy.name=fsdp; use one of "
            f"{', '.join(PARAM_DTYPES)} (FSDP2 keeps float32 shards and computes in bf16 for bf16-mixed)"
        )
    return PARAM_DTYPES[precision]


def mixed_precision_policy(precision: str):
    """FSDP2's ``MixedPrecisionPolicy`` for ``trainer.precision``: bf16 parameters, fp32 reduction."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    dtype = param_dtype(precision)
    if dtype is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=REDUCE_DTYPE)


def reshard_after_forward(options: Mapping[str, Any]) -> bool:
    """``sharding_strategy`` → ``reshard_after_forward`` (FULL_SHARD frees gathered blocks after forward)."""
    name = str(options.get("sharding_strategy", "FULL_SHARD"))
    if name not in RESHARD_AFTER_FORWARD:
        raise ConfigError(
            f"trainer.strategy.fsdp.sharding_strategy={name!r} must be one of {', '.join(RESHARD_AFTER_FORWARD)} "
            "(FSDP2: FULL_SHARD reshards after forward, SHARD_GRAD_OP keeps blocks gathered until backward)"
        )
    return RESHARD_AFTER_FORWARD[name]


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every transformer block in ``model``, outermost blocks only."""
    from tempo_kit.training.strategies import layer_classes

    classes = tuple(layer_classes(model))
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if classes and isinstance(module, classes) and not any(name.startswith(f + ".") for f, _ in found):
            found.append((name, module))
    return found


def check_blocks(model: nn.Module) -> None:
    """Each of :data:`SHARDED_PARTS` must hold transformer blocks, or FSDP would gather it whole."""
    from tempo_kit.training.strategies import layer_classes

    for part in SHARDED_PARTS:
        component = getattr(model, part, None)
        if component is not None and not layer_classes(component):
            raise ConfigError(
                f"trainer.strategy.name=fsdp: the {part} ({type(component).__name__}) has no transformer blocks "
                f"to shard (it declares no `decoder_layer_classes`); use trainer.strategy.name=ddp, or give the "
                f"{part} a `decoder_layer_classes` attribute naming its block classes"
            )


def unsupported_lora(model: nn.Module) -> list[str]:
    """Names of LoRA layers FSDP2 training cannot export (only ``nn.Linear`` bases merge from shards)."""
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [
        f"{name} ({type(module.get_base_layer()).__name__})"
        for name, module in model.named_modules()
        if isinstance(module, BaseTunerLayer) and not isinstance(module, LoraLinear)
    ]


def check_lora(model: nn.Module) -> None:
    """LoRA under FSDP2 on linear layers only (their merge into the exported weights is exact)."""
    bad = unsupported_lora(model)
    if bad:
        raise ConfigError(
            f"trainer.strategy.name=fsdp: LoRA is supported on linear layers only, but lora target_modules "
            f"matched {', '.join(bad[:3])}{' …' if len(bad) > 3 else ''}; narrow lora.<part>.target_modules "
            "to linear layers (e.g. [q_proj, k_proj, v_proj, o_proj])"
        )


def shard_model(
    model: nn.Module,
    mesh: DeviceMesh,
    precision: str,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """``fully_shard`` every transformer block of ``model``, then ``model`` itself, in place.

    Args:
        model: a built ``TempoModel`` (trainability and LoRA already applied).
        mesh: the 1-D data-parallel ``DeviceMesh`` to shard over.
        precision: ``trainer.precision`` (see :func:`mixed_precision_policy`).
        options: ``trainer.strategy.fsdp`` (``sharding_strategy``, ``cpu_offload``).
    """
    from torch.distributed.fsdp import (
        CPUOffloadPolicy,
        OffloadPolicy,
        fully_shard,
        register_fsdp_forward_method,
    )

    options = dict(options or {})
    check_blocks(model)
    check_lora(model)
    common = {
        "mesh": mesh,
        "mp_policy": mixed_precision_policy(precision),
        "offload_policy": CPUOffloadPolicy() if options.get("cpu_offload") else OffloadPolicy(),
    }
    reshard = reshard_after_forward(options)
    for _, block in blocks(model):
        fully_shard(block, reshard_after_forward=reshard, **common)
    fully_shard(model, **common)
    for method in FORWARD_METHODS:
        if hasattr(model, method):
            register_fsdp_forward_method(model, method)
    return model


def local_numel(model: nn.Module) -> int:
    """Parameter elements this rank holds (its shards under FSDP2, everything otherwise)."""
    from torch.distributed.tensor import DTensor

    return sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in model.parameters())


def gather_full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict on rank 0, in CPU memory (collective: every rank calls it).

    Other ranks get an empty dict; names are the model's own (FSDP2 adds no wrapper names).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def hold_full_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Make this rank's sharded ``model`` hold the gathered ``state`` as plain tensors, in place.

    Afterwards the model is an ordinary module again (its own ``save_pretrained``, LoRA merge and
    peft export work unchanged) and must not run under FSDP anymore: this is the last step of a
    run, on rank 0, after :func:`gather_full_state`. Parameters shared between modules (tied
    embeddings) stay shared.
    """
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()  # sharded state: FSDP's state-dict hooks then leave parameters alone
    full: dict[int, nn.Parameter] = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        for name, param in list(module.named_parameters(recurse=False)):
            key = f"{prefix}.{name}" if prefix else name
            if id(param) not in full:
                if key not in state:
                    raise KeyError(f"the gathered state dict has no {key!r}")
                full[id(param)] = nn.Parameter(state[key], requires_grad=param.requires_grad)
            module.register_parameter(name, full[id(param)])
    return model


def load_into_shards(model: nn.Module, state: Mapping[str, torch.Tensor] | None) -> None:
    """Fill a sharded ``model`` with rank 0's full ``state`` (collective; other ranks pass ``None``).

    Rank 0 broadcasts each tensor and every rank keeps only its shard, so all ranks start from
    rank 0's weights, random initialisations (memory tokens, LoRA) included. Buffers, which FSDP2
    does not shard, are broadcast whole, the non-persistent ones (rotary frequencies) included: a
    rank whose model was built without weights gets them too.
    """
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, dict(state or {}), options=options)
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
