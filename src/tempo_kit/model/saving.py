"""Writing a whole model folder, uploading it, and reading it back with overrides.

Kept apart from :mod:`tempo_kit.model.tempo_model` so the model class holds the computation and
this module holds what a folder is: the card, the ``AutoModel`` files, one subfolder per part
(:mod:`tempo_kit.model.storage`), the plugin packages to install and the manifest, all written
beside the target and renamed into place.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from tempo_kit import __version__
from tempo_kit.atomic import atomic_folder, check_output_path, write_text
from tempo_kit.manifest import write_manifest
from tempo_kit.model import storage
from tempo_kit.model.card import CARD_NAME, model_card
from tempo_kit.model.config import TempoConfig
from tempo_kit.parts import COMPONENTS
from tempo_kit.registry import component_packages


def save_model_folder(
    model: nn.Module, config: TempoConfig, out_dir: str | Path, training: Mapping[str, Any] | None = None
) -> Path:
    """``model``'s parts (built from ``config``) as a kit-format folder at ``out_dir``; see
    :meth:`TempoModel.save_pretrained <tempo_kit.model.tempo_model.TempoModel.save_pretrained>`."""
    from tempo_kit.model.auto import auto_files  # transformers' Auto classes: imported when saving

    out = check_output_path(out_dir, what="model folder", kind="folder")
    with atomic_folder(out, replace=True) as partial:
        saved = config.to_dict()
        write_text(partial / CARD_NAME, model_card(saved, __version__, training))
        for name, text in auto_files().items():  # AutoModel.from_pretrained(folder)
            write_text(partial / name, text)
        for name in COMPONENTS:
            saved[name] = storage.save_component(getattr(model, name), saved[name], partial / name, name)
        # plugin parts: which package to install to load this folder again
        saved[storage.PACKAGES_KEY] = component_packages(saved)
        storage.write_config(partial, saved, __version__)
        write_manifest(partial)
    return out


def push_model(model: Any, repo_id: str, *, token: str | None = None, **options: Any) -> str:
    """Save ``model`` (with its card) to a temporary folder and upload it to ``repo_id``; the
    token is checked before anything is written."""
    from tempo_kit.push import hub_token, push_folder

    token = hub_token(token)
    with tempfile.TemporaryDirectory(prefix="tempo-push-") as folder:
        saved = model.save_pretrained(Path(folder) / "model")
        return push_folder(saved, repo_id, token=token, **options)


def apply_overrides(document: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config with ``overrides`` applied: a mapping for a component merges into its saved
    arguments when it names the same component or no name (``decoder={"dtype": "bfloat16"}``) and
    replaces the spec when it names another one (``allocator={"name": "uniform"}``); any other
    key is replaced (``budget=4096``)."""
    for key, value in overrides.items():
        saved = document.get(key)
        if isinstance(value, Mapping) and isinstance(saved, dict) and value.get("name", saved.get("name")) == saved.get("name"):
            document[key] = {**saved, **value}
        else:
            document[key] = value
    return document
