"""Loading a recipe: YAML file, ``base:`` chain, defaults, overrides, interpolation, validation."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tempo_kit.errors import ConfigError
from tempo_kit.recipes.keys import check_keys, check_present
from tempo_kit.recipes.overrides import apply_overrides
from tempo_kit.recipes.schema import DEFAULTS
from tempo_kit.recipes.shipped import resolve_recipe
from tempo_kit.recipes.validate import validate_recipe


def load_recipe(path: str | Path, overrides: Sequence[str] = (), *, check_paths: bool = True) -> DictConfig:
    """Load, merge (defaults ← base chain ← recipe ← overrides), resolve and validate a recipe.

    Args:
        path: the recipe YAML file.
        overrides: ``key=value`` / ``~key`` strings, applied in order.
        check_paths: also require ``pretrained``/``init_from`` paths to be local directories.
    """
    path = resolve_recipe(path)
    user = _load_with_bases(path)
    _lightning_logger_key(user, str(path))
    check_keys(OmegaConf.to_container(user), source=str(path))
    cfg = apply_overrides(OmegaConf.merge(OmegaConf.create(copy.deepcopy(DEFAULTS)), user), overrides)
    _lightning_logger_key(cfg, str(path), overridden=True)
    check_keys(OmegaConf.to_container(cfg), source=str(path))
    check_present(OmegaConf.to_container(cfg), str(path))
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as error:
        raise ConfigError(f"recipe {str(path)!r}: {interpolation_error(error)}") from None
    validate_recipe(cfg, source=str(path), check_paths=check_paths)
    return cfg


def _lightning_logger_key(cfg: DictConfig, source: str, overridden: bool = False) -> None:
    """Lightning's ``Trainer(logger=...)`` spelling, ``trainer.logger``, taken as the kit's
    ``trainer.loggers`` (``false`` is no logger). In a recipe file both at once are refused; after
    the overrides a ``trainer.logger`` can only be an override, and it wins."""
    trainer = cfg.get("trainer") if not OmegaConf.is_interpolation(cfg, "trainer") else None
    if not isinstance(trainer, DictConfig) or "logger" not in trainer:
        return
    if "loggers" in trainer and not overridden:
        raise ConfigError(
            f"recipe {source!r}: trainer.logger (Lightning's name) and trainer.loggers are both set; keep trainer.loggers"
        )
    value = trainer.pop("logger")
    if value is not True:  # true: the default loggers
        trainer["loggers"] = [] if value is False else value


def interpolation_error(error: OmegaConfBaseException) -> str:
    """OmegaConf's several-line message as one line naming the key that holds the ``${...}``."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    key = getattr(error, "full_key", None)
    where = f"{key}: " if key else ""
    return f"{where}cannot resolve an interpolation: {reason}; set that key or correct the ${{...}} reference"


def _load_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    """The recipe at ``path`` merged over its ``base:`` chain (bases are relative to the file)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"recipe base chain loops: {chain}")
    cfg = _read_yaml(path)
    base = cfg.pop("base", None)
    replaced = _take_replace_markers(cfg)
    if base is None:
        return cfg
    base_path = (path.parent / str(base)).resolve()
    if not base_path.is_file():
        raise ConfigError(f"recipe {str(path)!r}: base {str(base)!r} not found (looked for {base_path})")
    parent = _load_with_bases(base_path, (*seen, path))
    for dotted in replaced:  # a mapping marked `_replace_: true` replaces the base's instead of merging
        head, _, leaf = dotted.rpartition(".")
        holder = OmegaConf.select(parent, head) if head else parent
        if isinstance(holder, DictConfig) and leaf in holder:
            holder.pop(leaf)
    return OmegaConf.merge(parent, cfg)


#: A mapping holding ``_replace_: true`` replaces the same mapping of its ``base:`` recipe whole.
REPLACE_MARKER = "_replace_"


def _take_replace_markers(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Dotted keys of the mappings marked ``_replace_: true`` (markers removed, nested ones too)."""
    found = []
    for key in list(cfg.keys()):
        if OmegaConf.is_interpolation(cfg, key):  # resolved later, once every part is merged
            continue
        value = cfg[key]
        if not isinstance(value, DictConfig):
            continue
        dotted = f"{prefix}{key}"
        marker = value.pop(REPLACE_MARKER, None)
        if marker is not None and marker is not True and marker is not False:
            raise ConfigError(f"{dotted}.{REPLACE_MARKER} must be true or false, got {marker!r}")
        if marker:
            found.append(dotted)
        found += _take_replace_markers(value, dotted + ".")
    return found


def _read_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(
            f"recipe {str(path)!r} does not exist; pass a YAML file or a shipped recipe's name "
            "(`tempo-kit recipes list`)"
        )
    import yaml

    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())  # YAML's message spans lines, with a caret drawing
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {reason}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of sections, got a list")
    return cfg
