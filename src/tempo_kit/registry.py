"""One small registry type and the kit's registries.

The four component kinds (plus reductions), video backends and benchmark formats each have one.
A registry imports its ``builtin`` module itself on the first lookup: that is the one way the
kit's own entries get registered, so no caller imports a package "for its side effects".

Shaped like timm's model registry: a decorator stores a builder under a name, ``build`` makes
one from a recipe mapping ``{"name": ..., **kwargs}``, ``list`` filters names with a glob.
Third-party packages add components without touching the kit, either by importing and using the
decorator or through the Python entry-point group ``tempo_kit.<kind>`` (e.g.
``tempo_kit.allocators``), which is read lazily the first time a name is looked up or listed.
A plugin that fails to import is reported once and set aside: the kit's own components and the
other plugins keep working, and only asking for the broken name raises its error.
:meth:`Registry.origin` says which installed distribution provides a name, so an exported
model can record what to install to load it again.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from tempo_kit.errors import ConfigError, did_you_mean

T = TypeVar("T")

ENTRY_POINT_PREFIX = "tempo_kit."

#: The distribution the kit's own components come from.
KIT_DISTRIBUTION = "tempo-kit"

logger = logging.getLogger("tempo_kit.registry")


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
        self._origins: dict[str, str] = {}  # name → distribution of an entry-point plugin
        self._broken: dict[str, str] = {}  # name → why its plugin failed to import
        self._families: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Callable[..., T]]]] = []
        self._plugins_loaded = False

    @property
    def noun(self) -> str:
        """One entry's name in messages: ``video_backends`` → ``video backend``."""
        return self.kind.removesuffix("s").replace("_", " ")

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

    def register_family(self, pattern: str, factory: Callable[[re.Match[str]], Callable[..., T]]) -> None:
        """Names matching the regex ``pattern`` (whole name) get the builder ``factory(match)``:
        e.g. ``mlp(\\d+)x_gelu`` makes ``mlp6x_gelu`` a projector without registering every depth."""
        self._families.append((re.compile(pattern), factory))

    def _family_builder(self, name: str) -> Callable[..., T] | None:
        for pattern, factory in self._families:
            if match := pattern.fullmatch(name):
                return factory(match)
        return None

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if self.builtin:
            importlib.import_module(self.builtin)
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            if entry_point.name in self._builders:
                continue
            dist = getattr(entry_point, "dist", None)
            package = dist.name if dist is not None else entry_point.value.split(":")[0].split(".")[0]
            try:
                builder = entry_point.load()
            except Exception as error:  # a broken plugin must not break the kit or the other plugins
                message = (
                    f"plugin {entry_point.name!r} ({entry_point.value}, package {package!r}) in entry-point "
                    f"group {self.entry_point_group!r} failed to import: {type(error).__name__}: {error}; "
                    f"fix or reinstall {package!r} (pip uninstall {package} removes it)"
                )
                self._broken[entry_point.name] = message
                logger.warning("%s", message)
                continue
            self._builders.setdefault(entry_point.name, builder)
            self._origins.setdefault(entry_point.name, package)

    def get(self, name: str) -> Callable[..., T]:
        """Return the builder registered under ``name``, with a did-you-mean error if unknown."""
        if name not in self._builders:
            self._load_plugins()
        if name not in self._builders and name in self._broken:
            raise RegistryError(self._broken[name])
        if name not in self._builders and (family := self._family_builder(name)) is not None:
            return family
        if name not in self._builders:
            known = ", ".join(sorted(self._builders)) or "(none)"
            raise RegistryError(f"unknown {self.noun} {name!r}{did_you_mean(name, self._builders)}. Known: {known}.")
        return self._builders[name]

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a glob ``pattern`` (e.g. ``"mlp*"``)."""
        self._load_plugins()
        return sorted(n for n in self._builders if fnmatch.fnmatchcase(n, pattern))

    def broken(self) -> dict[str, str]:
        """Plugins that failed to import: name → the error, with the package to fix."""
        self._load_plugins()
        return dict(self._broken)

    def origin(self, name: str) -> str:
        """The installed distribution that provides ``name`` (``tempo-kit`` for the kit's own).

        Entry-point plugins name their distribution; a builder registered with the decorator is
        traced from its module's top-level package (the module name itself if no installed
        distribution holds it, e.g. a script).
        """
        builder = self.get(name)
        if name in self._origins:
            return self._origins[name]
        top = str(getattr(builder, "__module__", "") or "").split(".")[0]
        if top == "tempo_kit":
            return KIT_DISTRIBUTION
        return (metadata.packages_distributions().get(top) or [top])[0]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._builders or (isinstance(name, str) and self._family_builder(name) is not None)

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
        check_kwargs(builder, kwargs, where=f"{self.noun} {name!r}")
        return builder(**kwargs)


def _init_of(cls: type) -> Callable | None:
    """The ``__init__`` that really takes a class's arguments: the first one defined along its MRO.
    ``None`` when that is ``object``'s or ``torch.nn.Module``'s, which take none of their own
    (their ``(*args, **kwargs)`` signature would otherwise hide every check: ``uniform``)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object or (klass.__module__ == "torch.nn.modules.module" and klass.__name__ == "Module"):
            return None
        return init
    return None


def accepted_arguments(builder: Callable) -> list[str] | None:
    """Keyword names ``builder`` accepts, or ``None`` when it takes ``**kwargs`` or has no signature.

    A class is judged by the ``__init__`` that takes its arguments (:func:`_init_of`), whatever
    signature it inherits: one without its own ``__init__`` accepts no argument.
    """
    if inspect.isclass(builder) and _init_of(builder) is None:
        return []
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]


def check_kwargs(
    builder: Callable, kwargs: Mapping[str, Any], where: str, *, require_all: bool = True, fix: str = ""
) -> None:
    """Bind ``kwargs`` to ``builder``'s signature without calling it: the kit's one signature check.

    Unknown names are a :class:`RegistryError` with a did-you-mean and the accepted names, then
    ``fix`` (a sentence saying how to remove them; ``{key}`` in it stands for the first unknown
    name). With ``require_all``, so are required arguments that ``kwargs`` does not give; recipes
    pass ``require_all=False``, as the model fills some (widths, the tokenizer) when it builds.
    """
    accepted = accepted_arguments(builder)
    if accepted is None:
        return
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, accepted)}" for key in unknown]
        noun = "argument" if len(unknown) == 1 else "arguments"
        raise RegistryError(
            f"{where} got unknown {noun} {', '.join(hints)}. Accepted: {', '.join(accepted) or '(none)'}."
            + (f" {fix.format(key=unknown[0])}" if fix else "")
        )
    if not require_all:
        return
    params = inspect.signature(builder).parameters
    missing = [n for n in accepted if params[n].default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        raise RegistryError(f"{where} is missing required argument(s) {', '.join(map(repr, missing))}.")


COMPRESSORS: Registry = Registry("compressors", builtin="tempo_kit.compressors")
PROJECTORS: Registry = Registry("projectors", builtin="tempo_kit.projectors")
DECODERS: Registry = Registry("decoders", builtin="tempo_kit.decoders")
ALLOCATORS: Registry = Registry("allocators", builtin="tempo_kit.allocators")
REDUCTIONS: Registry = Registry("reductions", builtin="tempo_kit.allocators")
#: ``factory(path, output_size=None) -> VideoSource`` (see :mod:`tempo_kit.video.backends`).
VIDEO_BACKENDS: Registry = Registry("video_backends", builtin="tempo_kit.video.backends")
#: ``convert(row) -> iterator of harness rows`` of one benchmark's own annotation layout.
BENCHMARK_FORMATS: Registry = Registry("benchmark_formats", builtin="tempo_kit.evaluation.benchmarks")

#: The model config key of each registered part → its registry.
PART_REGISTRIES: dict[str, Registry] = {
    "compressor": COMPRESSORS,
    "projector": PROJECTORS,
    "decoder": DECODERS,
    "allocator": ALLOCATORS,
    "reduction": REDUCTIONS,
}


#: Every registry of the kit, for listings (``tempo-kit components``).
REGISTRIES: tuple[Registry, ...] = (*PART_REGISTRIES.values(), VIDEO_BACKENDS, BENCHMARK_FORMATS)


def _spec_name(spec: Any) -> str | None:
    return spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, Mapping) else None


def component_packages(config: Mapping[str, Any]) -> dict[str, str]:
    """``{part: distribution}`` for the parts of a model config that come from outside the kit."""
    packages = {}
    for part, registry in PART_REGISTRIES.items():
        name = _spec_name(config.get(part))
        if name is not None and name in registry and (origin := registry.origin(name)) != KIT_DISTRIBUTION:
            packages[part] = origin
    return packages


def check_packages_installed(config: Mapping[str, Any], packages: Mapping[str, str], where: str) -> None:
    """Every part recorded as coming from a plugin package is registered here, or say what to install."""
    for part, package in packages.items():
        registry = PART_REGISTRIES.get(part)
        name = _spec_name(config.get(part))
        if registry is None or name is None or name in registry:
            continue
        problem = registry.broken().get(name)
        raise RegistryError(
            f"{where}: its {part} {name!r} comes from the package {package!r}, "
            + (f"which is installed but broken: {problem}" if problem else f"which is not installed here: pip install {package}")
        )


def parse_spec(text: str, where: str) -> dict[str, Any]:
    """``NAME[:key=value[:key=value ...]]`` (a command-line switch) → ``{"name": NAME, key: value}``.

    Values are read as YAML scalars (``2`` is an int, ``true`` a bool, ``exact`` a string):
    ``ata:mode=exact`` → ``{"name": "ata", "mode": "exact"}``.
    """
    import yaml

    name, *pairs = str(text).split(":")
    spec: dict[str, Any] = {"name": name.strip()}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"{where} {text}: {pair!r} is not key=value; write e.g. ata:mode=exact")
        spec[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return spec


def check_spec(registry: Registry, spec: Mapping[str, Any], where: str) -> None:
    """The spec's name is registered and its arguments fit the builder, before anything is built."""
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        builder = registry.get(spec["name"])
        check_kwargs(builder, kwargs, where=f"{registry.noun} {spec['name']!r}")
    except RegistryError as error:
        raise RegistryError(f"{where}: {error}") from None
