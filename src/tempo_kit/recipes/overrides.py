"""Command-line overrides: omegaconf's dotted ``key=value`` and ``~key`` to delete a key."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tempo_kit.errors import ConfigError


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply command-line ``key=value`` (value parsed as YAML) and ``~key`` (delete) overrides."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if item.startswith("~"):
            dotted = item[1:]
            parent_key, _, leaf = dotted.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
            if not isinstance(parent, DictConfig) or leaf not in parent:
                raise ConfigError(
                    f"override {item!r}: key {dotted!r} is not in the recipe, nothing to delete"
                )
            parent.pop(leaf)
            continue
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} must be key=value (e.g. optim.lr.decoder=2e-5) or ~key to delete a key"
            )
        key = item.split("=", 1)[0]
        if not key or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"override {item!r}: {key!r} is not a dotted key")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        except (OmegaConfBaseException, yaml.YAMLError, TypeError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise ConfigError(f"override {item!r} cannot be applied: {reason}") from None
    return cfg
