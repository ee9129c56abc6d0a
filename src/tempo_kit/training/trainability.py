"""Per-part trainability: ``full``, ``lora`` or ``frozen`` for each of Tempo's four parts.

The four stages of the paper (Table A) differ only in which parts learn, so one function sets
``requires_grad`` from a recipe's ``trainable:`` mapping instead of a code path per stage.
LoRA adapters are injected in place with peft (``inject_adapter_in_model``), which keeps the
model's module tree and its other parameter names; :func:`merge_lora` folds them back into the
base weights for export, restoring the exact key layout of a fully fine-tuned model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from tempo_kit.errors import ConfigError
from tempo_kit.parts import COMPONENTS, MEMORY_TOKENS, MEMORY_TOKENS_PART

#: Substring peft gives every LoRA parameter name (``lora_A``, ``lora_B``, ``lora_embedding_A`` ...).
LORA_MARKER = "lora_"


#: Name segments FSDP and activation checkpointing insert into parameter names.
WRAPPER_SEGMENTS: tuple[str, ...] = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def part_of(name: str) -> str | None:
    """The part a ``TempoModel`` parameter belongs to (``None`` for anything else).

    Wrapper segments added by FSDP, activation checkpointing or ``torch.compile`` are ignored.
    """
    for segment in WRAPPER_SEGMENTS:
        name = name.replace(segment, "")
    if name == MEMORY_TOKENS or name.startswith(MEMORY_TOKENS + "."):
        return MEMORY_TOKENS_PART
    head = name.split(".", 1)[0]
    return head if head in COMPONENTS else None


def _submodule(root: nn.Module, dotted: str, where: str) -> nn.Module:
    module = root
    for attr in filter(None, dotted.split(".")):
        if not hasattr(module, attr):
            children = ", ".join(name for name, _ in module.named_children()) or "(none)"
            raise ConfigError(
                f"{where}: {dotted!r} does not exist in {type(root).__name__} (no {attr!r} under "
                f"{type(module).__name__}; its children are: {children}). Set {where} to one of them."
            )
        module = getattr(module, attr)
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{where}: {dotted!r} is a {type(module).__name__}, not a module")
    return module


#: ``lora.<part>.target_modules`` value that means the component's own family targets
#: (its ``lora_target_modules``: e.g. Phi-3's fused ``qkv_proj``/``gate_up_proj``).
FAMILY_TARGETS = "family"


def lora_targets(component: nn.Module, targets: Any, where: str) -> Any:
    """The recipe's ``target_modules`` with :data:`FAMILY_TARGETS` replaced by the component's own list."""
    if targets != FAMILY_TARGETS:
        return targets
    declared = getattr(component, "lora_target_modules", None)
    if not declared:
        raise ConfigError(
            f"{where}.target_modules={FAMILY_TARGETS}: {type(component).__name__} declares no "
            "lora_target_modules; list the module names instead"
        )
    return list(declared)


def check_partial_targets(component: nn.Module, target: nn.Module, targets: Any, where: str) -> None:
    """Refuse a target list some of whose names the module lacks (adapters on half the projections).

    A list none of whose names exist is left to peft's own error.
    """
    if isinstance(targets, str) or not targets:
        return
    names = [name for name, _ in target.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + str(t)) for n in names)]
    if missing and len(missing) < len(targets):
        family = getattr(component, "lora_target_modules", None)
        hint = f"; this family's projections are {list(family)} (target_modules: {FAMILY_TARGETS})" if family else ""
        raise ConfigError(
            f"{where}.target_modules: {type(target).__name__} has no module named {missing}, so LoRA would "
            f"adapt only part of each layer{hint}"
        )


def inject_lora(component: nn.Module, settings: Mapping[str, Any], where: str) -> nn.Module:
    """Inject peft LoRA adapters into ``component.<settings['module']>``; returns that module.

    ``settings`` are peft ``LoraConfig`` arguments plus ``module`` (dotted path inside the
    component; empty = the whole component).
    """
    from peft import LoraConfig, inject_adapter_in_model

    settings = dict(settings)
    target = _submodule(component, str(settings.pop("module", "") or ""), f"{where}.module")
    settings["target_modules"] = lora_targets(component, settings.get("target_modules"), where)
    check_partial_targets(component, target, settings["target_modules"], where)
    try:
        config = LoraConfig(**settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: invalid LoRA settings {settings}: {error}") from error
    try:
        inject_adapter_in_model(config, target)
    except ValueError as error:
        raise ConfigError(
            f"{where}: peft could not place adapters ({error}); check target_modules "
            f"{settings.get('target_modules')!r} against the module names of {type(target).__name__}"
        ) from error
    return target


@dataclass
class TrainabilityReport:
    """Parameter counts per part after :func:`apply_trainability` (logged at the start of fit)."""

    modes: dict[str, str]
    trainable: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        rows = []
        for part, mode in self.modes.items():
            rows.append(
                f"{part:<14} {mode:<7} trainable {self.trainable.get(part, 0):>14,} / {self.total.get(part, 0):>14,}"
            )
        return rows

    def __str__(self) -> str:
        return "\n".join(self.lines())


def apply_trainability(
    model: nn.Module, modes: Mapping[str, str], lora: Mapping[str, Mapping[str, Any]] | None = None
) -> TrainabilityReport:
    """Set ``requires_grad`` of every parameter of ``model`` (a ``TempoModel``) from ``modes``.

    Args:
        model: has ``compressor`` (with a ``memory_tokens`` parameter), ``projector``, ``decoder``.
        modes: part → ``full | lora | frozen`` for ``compressor``, ``memory_tokens``,
            ``projector``, ``decoder``.
        lora: part → LoRA settings for the parts in ``lora`` mode.

    Parameters outside the four parts (none in the kit's components) stay frozen.
    """
    lora = lora or {}
    for part, mode in modes.items():
        if mode == "lora":
            if part not in ("compressor", "decoder"):
                raise ConfigError(f"trainable.{part}=lora: only compressor and decoder take LoRA adapters")
            if part not in lora:
                raise ConfigError(f"trainable.{part}=lora needs LoRA settings under lora.{part}")
            if not any(n.startswith(f"{part}.") and LORA_MARKER in n for n, _ in model.named_parameters()):
                inject_lora(getattr(model, part), lora[part], f"lora.{part}")
    report = TrainabilityReport(modes=dict(modes))
    for name, param in model.named_parameters():
        part = part_of(name)
        mode = modes.get(part, "frozen") if part else "frozen"
        if mode == "full":
            param.requires_grad_(True)
        elif mode == "lora":
            param.requires_grad_(LORA_MARKER in name)
        else:
            param.requires_grad_(False)
        if part:
            report.total[part] = report.total.get(part, 0) + param.numel()
            if param.requires_grad:
                report.trainable[part] = report.trainable.get(part, 0) + param.numel()
    return report


def has_lora(model: nn.Module) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base weight and put the plain base layer back, in place.

    Afterwards the parameter names are those of a model that never had adapters, so the kit's
    ``save_pretrained`` (and the released layout) read it as a fully fine-tuned model.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    replacements = [
        (parent, child_name, child)
        for parent in model.modules()
        for child_name, child in parent.named_children()
        if isinstance(child, BaseTunerLayer)
    ]
    for parent, child_name, child in replacements:
        child.merge()
        setattr(parent, child_name, child.get_base_layer())
    return model


def lora_state_dict(model: nn.Module) -> dict[str, Any]:
    """Only the adapter tensors (what a LoRA run adds), keyed by their full parameter names."""
    return {name: p.detach().cpu() for name, p in model.named_parameters() if LORA_MARKER in name}
