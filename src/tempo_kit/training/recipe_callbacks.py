"""Lightning callbacks named in a recipe: ``trainer.callbacks: [{name: LearningRateMonitor}, ...]``.

A name is a class of ``lightning.pytorch.callbacks`` (``LearningRateMonitor``, ``EarlyStopping``,
``StochasticWeightAveraging`` ...) or an importable ``package.module:Class`` for a callback of
your own; the entry's other keys are the class's arguments, checked against its signature before
the run starts. They run beside the kit's own callbacks (step logging, checkpointing).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.registry import check_kwargs

#: The module short callback names are looked up in.
LIGHTNING_CALLBACKS = "lightning.pytorch.callbacks"


def callback_class(name: str, where: str) -> type:
    """The class ``name`` stands for: a Lightning callback, or ``package.module:Class``."""
    from lightning.pytorch import Callback

    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"{where}: cannot import {name!r} ({error}); give package.module:Class") from None
    else:
        module = importlib.import_module(LIGHTNING_CALLBACKS)
        known = [n for n in dir(module) if isinstance(getattr(module, n), type) and n[0].isupper()]
        if name not in known:
            raise ConfigError(
                f"{where}: {name!r} is not a callback of {LIGHTNING_CALLBACKS}{did_you_mean(name, known)}; "
                "name one of them (e.g. LearningRateMonitor, EarlyStopping) or your own as package.module:Class"
            )
        cls = getattr(module, name)
    if not (isinstance(cls, type) and issubclass(cls, Callback)):
        raise ConfigError(f"{where}: {name!r} is not a Lightning Callback class")
    return cls


def callback_specs(value: Any, where: str = "trainer.callbacks") -> list[tuple[type, dict[str, Any]]]:
    """``[{name: ..., **kwargs}]`` (or bare names) → (class, kwargs) pairs, all checked, none built."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise ConfigError(f"{where} must be a list, e.g. [{{name: LearningRateMonitor}}]; got {value!r}")
    pairs = []
    for index, item in enumerate(value):
        spec = {"name": item} if isinstance(item, str) else dict(item) if isinstance(item, Mapping) else {}
        if "name" not in spec:
            raise ConfigError(f"{where}[{index}] needs a name, e.g. {{name: EarlyStopping, monitor: val/loss}}")
        name = str(spec.pop("name"))
        cls = callback_class(name, f"{where}[{index}]")
        check_kwargs(cls, spec, where=f"{where}[{index}] ({name})")
        pairs.append((cls, spec))
    return pairs


def build_callbacks(value: Any) -> list:
    """The recipe's callbacks, built."""
    return [cls(**kwargs) for cls, kwargs in callback_specs(value)]
