"""Where each component of a ``TempoModel`` gets the weights it starts from, read once.

A model built without weights (``from_config(load_weights=False)``, ``from_pretrained``, FSDP
ranks) is filled here: a component built from a checkpoint folder reads it, a loaded model's
component reads its saved folder instead, and a component with no saved weights (a new model's
projector) takes the values it was built with, or those of a fresh CPU build of its spec when it
sits on the meta device. The whole model and the stored-features model
(:mod:`tempo_kit.model.stored`) both load through these functions, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from tempo_kit.hf import load_tensors, tied_aliases, to_empty_keeping_ties
from tempo_kit.model import storage
from tempo_kit.model.build import build_component, build_projector_between
from tempo_kit.parts import COMPONENTS
from tempo_kit.registry import COMPRESSORS, DECODERS


def component_source(model: nn.Module, name: str) -> str:
    """Where component ``name``'s weights come from, in words (for one-line load errors)."""
    folder = getattr(getattr(model, name), "pretrained", None)
    if model.saved_at is not None:
        folder = model.saved_at / name
    return f"{name} built from {folder}" if folder else f"{name} built from its config"


def component_initial_state(model: nn.Module, name: str) -> dict[str, Tensor]:
    """The state dict component ``name`` starts from, on the CPU (see the module docstring)."""
    part = getattr(model, name)
    folder = None if model.saved_at is None else model.saved_at / name
    if folder is None and storage.is_on_meta(part) and not callable(getattr(part, "initial_state_dict", None)):
        part = _fresh_component(model, name)
    return storage.component_state(part, folder, component_source(model, name))


def _fresh_component(model: nn.Module, name: str) -> nn.Module:
    """Component ``name`` built again from its spec on the CPU (its constructor's initialisation)."""
    with torch.device("cpu"):
        if name == "projector":
            return build_projector_between(model.config.projector, model.compressor, model.decoder)
        registry = {"compressor": COMPRESSORS, "decoder": DECODERS}[name]
        return build_component(registry, getattr(model.config, name), name)


def initial_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Every component's starting state under the model's keys; tied weights under each name."""
    state: dict[str, Tensor] = {}
    for name in COMPONENTS:
        part_state = component_initial_state(model, name)
        state.update({f"{name}.{key}": value for key, value in part_state.items()})
    for alias, first in tied_aliases(model).items():
        if first in state:
            state.setdefault(alias, state[first])
    return state


def load_initial_weights(model: nn.Module, state: Mapping[str, Tensor] | None = None) -> None:
    """Allocate what sits on the meta device (ties kept), then load ``state`` (default: each
    component's :func:`component_initial_state`) component by component."""
    if storage.is_on_meta(model):
        to_empty_keeping_ties(model, "cpu")
    for name in COMPONENTS:
        if state is None:
            part_state = component_initial_state(model, name)
        else:
            prefix = name + "."
            part_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        load_tensors(getattr(model, name), part_state, component_source(model, name))


def load_component(model: nn.Module, name: str) -> None:
    """Fill one component built on the meta device with its :func:`component_initial_state`."""
    part = getattr(model, name)
    if storage.is_on_meta(part):
        to_empty_keeping_ties(part, "cpu")
    load_tensors(part, component_initial_state(model, name), component_source(model, name))
