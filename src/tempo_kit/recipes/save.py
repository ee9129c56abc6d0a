"""A loaded recipe written out: as a plain dict, as YAML text, as the file every run keeps."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def to_dict(cfg: DictConfig | Mapping) -> dict[str, Any]:
    """A plain, resolved ``dict`` copy of a recipe."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return copy.deepcopy(dict(cfg))


def format_recipe(cfg: DictConfig | Mapping) -> str:
    """The resolved recipe as YAML (what ``--print`` shows and what every run saves)."""
    return OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg)))


def save_recipe(cfg: DictConfig | Mapping, path: str | Path, command: str | None = None) -> Path:
    """Write the resolved recipe, headed by the command that launched the run."""
    from tempo_kit.atomic import write_text

    header = f"# {command}\n" if command else ""
    return write_text(path, header + format_recipe(cfg))
