"""Old import paths, in one table: each still works, warns once per use, and names its new home.

A module whose names moved sets ``__getattr__ = moved_names(__name__)`` (PEP 562); a module that
moved as a whole keeps a two-line stub doing the same. The kit's own code imports from the real
homes; ``tests/test_single_homes.py`` holds it to that.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

#: old dotted path → new dotted path (a module maps every name it had).
MOVED = {
    "tempo_kit.checkpoints.files": "tempo_kit.hf_folder",
    "tempo_kit.inference.api.RELEVANCE_PROMPTS": "tempo_kit.compressors.prompts.COMPRESSOR_PROMPTS",
    "tempo_kit.inference.api.file_identity": "tempo_kit.inference.sources.file_identity",
    "tempo_kit.inference.overlap.StreamedVideo": "tempo_kit.inference.sources.Memory",
    "tempo_kit.inference.defaults.DEFAULT_INFER_MAX_CONTEXT": "tempo_kit.defaults.DEFAULT_MAX_CONTEXT",
}


def new_home(module: str, name: str) -> str | None:
    """Where ``module.name`` lives now, or ``None`` if it never moved."""
    old = f"{module}.{name}"
    if old in MOVED:
        return MOVED[old]
    return f"{MOVED[module]}.{name}" if module in MOVED else None


def moved_names(module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds moved names in their new home, with a DeprecationWarning."""

    def __getattr__(name: str) -> Any:
        target = None if name.startswith("__") else new_home(module, name)  # import machinery asks for dunders
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {target}; import it from there", DeprecationWarning, stacklevel=2)
        home, _, attr = target.rpartition(".")
        return getattr(importlib.import_module(home), attr)

    return __getattr__
