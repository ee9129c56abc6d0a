"""Component specs and arguments checked before anything is built.

A ``model.<part>`` spec must name a registered builder, and its arguments (like those of the
``lora.*`` and ``data`` sections) must be names the builder's signature accepts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig

from tempo_kit import registry as registries
from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.registry import Registry, RegistryError

#: The kit's modules whose import registers its components.
COMPONENT_MODULES = (
    "tempo_kit.projectors",
    "tempo_kit.compressors",
    "tempo_kit.decoders",
    "tempo_kit.allocators",
)


def check_arguments(builder: Callable, kwargs: Mapping[str, Any], where: str, source: str) -> None:
    """Bind ``kwargs`` to ``builder``'s signature without calling it: unknown names are errors.

    Missing required arguments are not checked here: the model fills some (widths, the
    tokenizer) when it builds the parts.
    """
    accepted = _accepted_names(builder)
    if accepted is None:
        return
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"recipe {source!r}: {where} got unknown argument {key!r}{did_you_mean(key, accepted)}. "
                f"Accepted: {', '.join(accepted)}. If a base recipe set it, delete it with ~{where.split()[0]}.{key} "
                f"on the command line, or give the recipe's {where.split()[0]} mapping `_replace_: true` so it "
                "replaces the base's instead of merging into it."
            )


def _accepted_names(builder: Callable) -> list[str] | None:
    """Keyword names ``builder`` accepts, or None when it takes ``**kwargs``/has no signature."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [
        n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"
    ]


def check_component(cfg: DictConfig, part: str, registry_name: str, source: str) -> None:
    """``model.<part>`` names a builder in ``registry_name`` and only arguments it accepts."""
    spec = cfg.model.get(part)
    if spec is None:
        raise ConfigError(f"recipe {source!r}: model.{part} is missing; give at least {{name: ...}}")
    registry = getattr(registries, registry_name)
    if isinstance(spec, str):
        return check_registry_name(registry, spec, f"model.{part}", source)
    if "name" not in spec:
        raise ConfigError(f"recipe {source!r}: model.{part} needs a 'name' (a registered {part})")
    import_components()
    try:
        builder = registry.get(str(spec.name))
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: model.{part}.name: {error}") from error
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    check_arguments(builder, kwargs, f"model.{part} ({spec.name!r})", source)


def check_registry_name(registry: Registry, name: str, where: str, source: str) -> None:
    """``name`` is registered in ``registry`` (after the kit's components are imported)."""
    import_components()
    try:
        registry.get(name)
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: {where}: {error}") from error


def import_components() -> None:
    """Import the kit's component modules so their registrations exist before lookups."""
    for module in COMPONENT_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - a broken optional component module
            continue
