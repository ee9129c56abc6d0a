"""One small registry type and the kit's four registries.

Shaped like timm's model registry: a decorator stores a builder under a name, ``build`` makes
one from a recipe mapping ``{"name": ..., **kwargs}``, ``list`` filters names with a glob.
Third-party packages add components without touching the kit, either by importing and using the
decorator or through the Python entry-point group ``tempo_kit.<kind>`` (e.g.
``tempo_kit.allocators``), which is read lazily the first time a name is looked up or listed.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from tempo_kit.errors import ConfigError, did_you_mean

T = TypeVar("T")

ENTRY_POINT_PREFIX = "tempo_kit."


class RegistryError(ConfigError, KeyError):
    """An unknown name or bad keyword arguments for a registered builder.

    A ``ConfigError`` because the name comes from user input (a recipe, a CLI switch), so the CLI
    prints it as a one-line error; still a ``KeyError`` for callers that look names up.
    """

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps names to builders (classes or functions) of one kind of component.

    Args:
        kind: plural noun used in messages and in the entry-point group ``tempo_kit.<kind>``.
        builtin: module holding the kit's own entries, imported on the first lookup so that
            ``PROJECTORS.list()`` works without importing ``tempo_kit.projectors`` first.
    """

    def __init__(self, kind: str, builtin: str | None = None) -> None:
        self.kind = kind
        self.builtin = builtin
        self._builders: dict[str, Callable[..., T]] = {}
        self._plugins_loaded = False

    @property
    def entry_point_group(self) -> str:
        return ENTRY_POINT_PREFIX + self.kind

    def register(self, name: str | None = None, *, override: bool = False) -> Callable:
        """Decorator: ``@ALLOCATORS.register("ata")`` stores the builder under ``name``."""

        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            key = name or getattr(builder, "__name__", None)
            if not key:
                raise ValueError(f"cannot infer a {self.kind} name for {builder!r}; pass one")
            if key in self._builders and not override and self._builders[key] is not builder:
                raise ValueError(
                    f"{self.kind} {key!r} is already registered by {self._builders[key]!r}; "
                    "pick another name or pass override=True"
                )
            self._builders[key] = builder
            return builder

        return decorator

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if self.builtin:
            importlib.import_module(self.builtin)
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            if entry_point.name in self._builders:
                continue
            try:
                builder = entry_point.load()
            except Exception as error:  # a broken plugin must not break the kit
                raise RegistryError(
                    f"plugin {entry_point.name!r} in entry-point group {self.entry_point_group!r} "
                    f"({entry_point.value}) failed to import: {error}"
                ) from error
            self._builders.setdefault(entry_point.name, builder)

    def get(self, name: str) -> Callable[..., T]:
        """Return the builder registered under ``name``, with a did-you-mean error if unknown."""
        if name not in self._builders:
            self._load_plugins()
        if name not in self._builders:
            close = difflib.get_close_matches(name, self._builders, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind[:-1] if self.kind.endswith('s') else self.kind} {name!r}.{hint} "
                f"Known: {', '.join(sorted(self._builders)) or '(none)'}."
            )
        return self._builders[name]

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a glob ``pattern`` (e.g. ``"mlp*"``)."""
        self._load_plugins()
        return sorted(n for n in self._builders if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def build(self, spec: Mapping[str, Any] | str, **overrides: Any) -> T:
        """Build from ``{"name": ..., **kwargs}`` (or a bare name), rejecting unknown kwargs by name."""
        if isinstance(spec, str):
            spec = {"name": spec}
        spec = dict(spec)
        if "name" not in spec:
            raise RegistryError(
                f"a {self.kind} spec needs a 'name' key (one of: {', '.join(self.list())}); got keys {sorted(spec)}"
            )
        name = spec.pop("name")
        kwargs = {**spec, **overrides}
        builder = self.get(name)
        check_kwargs(builder, kwargs, where=f"{self.kind} {name!r}")
        return builder(**kwargs)


def check_kwargs(builder: Callable, kwargs: Mapping[str, Any], where: str) -> None:
    """Raise a clear error if ``kwargs`` holds names ``builder`` does not accept (no build happens)."""
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, accepted)}" for key in unknown]
        raise RegistryError(
            f"{where} got unknown argument(s) {', '.join(hints)}. Accepted: {', '.join(accepted) or '(none)'}."
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in kwargs
        and n != "self"
    ]
    if missing:
        raise RegistryError(f"{where} is missing required argument(s) {', '.join(map(repr, missing))}.")


COMPRESSORS: Registry = Registry("compressors", builtin="tempo_kit.compressors")
PROJECTORS: Registry = Registry("projectors", builtin="tempo_kit.projectors")
DECODERS: Registry = Registry("decoders", builtin="tempo_kit.decoders")
ALLOCATORS: Registry = Registry("allocators", builtin="tempo_kit.allocators")
REDUCTIONS: Registry = Registry("reductions", builtin="tempo_kit.allocators")
