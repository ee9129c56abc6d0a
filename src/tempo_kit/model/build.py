"""Building the model's components from registry specs, with errors that name the config key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from tempo_kit.errors import ConfigError
from tempo_kit.projectors import build_projector
from tempo_kit.registry import Registry, RegistryError


def build_component(registry: Registry, spec: Mapping[str, Any], key: str):
    """``registry.build(spec)``; a bad name or argument is a :class:`ConfigError` naming ``key``."""
    try:
        return registry.build(spec)
    except RegistryError as error:
        raise ConfigError(f"model config: {key}: {error}") from None


def build_projector_between(spec: Mapping[str, Any], compressor: nn.Module, decoder: nn.Module) -> nn.Module:
    """The projector from ``compressor.hidden_size`` to ``decoder.hidden_size``.

    The widths are inferred; a spec that states them must agree with the components.
    """
    kwargs = dict(spec)
    name = kwargs.pop("name")
    widths = {"in_features": int(compressor.hidden_size), "out_features": int(decoder.hidden_size)}
    for key, inferred in widths.items():
        given = kwargs.pop(key, None)
        if given is not None and int(given) != inferred:
            raise ConfigError(
                f"model config: projector.{key}={given} contradicts the {'compressor' if key == 'in_features' else 'decoder'} "
                f"width {inferred}; drop the key (it is inferred) or fix the component"
            )
    try:
        return build_projector(name, widths["in_features"], widths["out_features"], **kwargs)
    except RegistryError as error:
        raise ConfigError(f"model config: projector: {error}") from None
