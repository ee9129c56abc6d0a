"""Component specs and arguments checked before anything is built.

A ``model.<part>`` spec must name a registered builder, and its arguments (like those of the
``lora.*`` and ``data`` sections) must be names the builder's signature accepts. The signature
check itself is the registry's (:func:`tempo_kit.registry.check_kwargs`); this module only says
which recipe key was wrong and how to remove it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig

from tempo_kit.errors import ConfigError
from tempo_kit.registry import Registry, RegistryError, check_kwargs


def check_arguments(builder: Callable, kwargs: Mapping[str, Any], where: str, source: str) -> None:
    """Bind ``kwargs`` to ``builder``'s signature without calling it: unknown names are errors.

    Missing required arguments are not checked here: the model fills some (widths, the
    tokenizer) when it builds the parts.
    """
    section = where.split()[0]
    fix = (
        f"If a base recipe set it, delete it with ~{section}.{{key}} on the command line, or give the "
        f"recipe's {section} mapping `_replace_: true` so it replaces the base's instead of merging into it."
    )
    try:
        check_kwargs(builder, kwargs, where, require_all=False, fix=fix)
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: {error}") from None


def check_component(cfg: DictConfig, part: str, registry: Registry, source: str) -> None:
    """``model.<part>`` names a builder in ``registry`` and only arguments it accepts."""
    spec = cfg.model.get(part)
    if spec is None:
        raise ConfigError(f"recipe {source!r}: model.{part} is missing; give at least {{name: ...}}")
    if isinstance(spec, str):
        return check_registry_name(registry, spec, f"model.{part}", source)
    if "name" not in spec:
        raise ConfigError(f"recipe {source!r}: model.{part} needs a 'name' (a registered {part})")
    builder = _lookup(registry, str(spec.name), f"model.{part}.name", source)
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    check_arguments(builder, kwargs, f"model.{part} ({spec.name!r})", source)


def check_registry_name(registry: Registry, name: str, where: str, source: str) -> None:
    """``name`` is registered in ``registry`` (the registry imports the kit's own entries itself)."""
    _lookup(registry, name, where, source)


def _lookup(registry: Registry, name: str, where: str, source: str) -> Callable:
    try:
        return registry.get(name)
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: {where}: {error}") from None
