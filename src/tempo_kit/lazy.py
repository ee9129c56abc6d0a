"""Package ``__init__`` exports imported on first use (PEP 562), so ``tempo-kit VERB --help`` stays fast.

A package whose ``__init__`` imports its modules eagerly pulls torch, transformers and the video
decoders into any import of one of its light submodules (the command-line parsers); a lazy
``__init__`` keeps ``from tempo_kit.data import TempoDataModule`` working and costs nothing until then.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each name to its module."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
