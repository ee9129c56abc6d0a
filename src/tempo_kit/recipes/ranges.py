"""Types and ranges of recipe values, checked before anything is built.

A key's type comes from its default in :data:`~tempo_kit.recipes.schema.DEFAULTS` (an integer
default takes integers, a float default numbers, a flag ``true``/``false``); :data:`RULES` adds
the ranges and the keys whose default is ``null`` or that live in open sections (``data``,
``model``). ``max_epochs=abc`` or ``window=0`` is then a one-line error naming the key, not a
traceback from inside Lightning or the data loader minutes later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tempo_kit.errors import ConfigError
from tempo_kit.recipes.schema import DEFAULTS


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: _int(v) and v >= low


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _devices(value: Any) -> bool:
    if _int(value):
        return value >= 1 or value == -1
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        return value == "auto" or (bool(parts) and all(part.isdigit() for part in parts))
    return isinstance(value, list) and bool(value) and all(_int(v) and v >= 0 for v in value)


#: Lightning's precision names.
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "transformer-engine")
#: Lightning's accelerator names.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

#: key → (check, what a valid value is).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "run.seed": (_at_least(0), "an integer ≥ 0"),
    "trainer.max_epochs": (lambda v: _int(v) and (v >= 1 or v == -1), "a positive integer, or -1 for no limit"),
    "trainer.max_steps": (lambda v: _int(v) and (v >= 1 or v == -1), "a positive integer, or -1 for no limit"),
    "trainer.devices": (_devices, "a positive integer, -1 (all), auto, or a list of device indices"),
    "trainer.num_nodes": (_at_least(1), "a positive integer"),
    "trainer.precision": (lambda v: str(v) in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    "trainer.accelerator": (lambda v: v in ACCELERATORS, f"one of {', '.join(ACCELERATORS)}"),
    "trainer.log_every_n_steps": (_at_least(1), "a positive integer"),
    "trainer.checkpoint_every_n_steps": (_at_least(1), "a positive integer"),
    "trainer.check_val_every_n_epoch": (_optional(_at_least(1)), "a positive integer or null"),
    "trainer.val_check_interval": (
        _optional(lambda v: (_int(v) and v >= 1) or (_number(v) and 0 < v <= 1)),
        "a number of batches ≥ 1, a fraction in (0, 1], or null",
    ),
    "trainer.limit_val_batches": (
        _optional(lambda v: (_int(v) and v >= 0) or (_number(v) and 0 <= v <= 1)),
        "a number of batches ≥ 0, a fraction in [0, 1], or null",
    ),
    "trainer.limit_test_batches": (
        _optional(lambda v: (_int(v) and v >= 0) or (_number(v) and 0 <= v <= 1)),
        "a number of batches ≥ 0, a fraction in [0, 1], or null",
    ),
    "trainer.num_sanity_val_steps": (_at_least(-1), "an integer ≥ -1"),
    "trainer.cpu_threads": (_optional(_at_least(1)), "a positive integer or null"),
    "optim.weight_decay": (lambda v: _number(v) and v >= 0, "a number ≥ 0"),
    "optim.eps": (lambda v: _number(v) and v > 0, "a number > 0"),
    "optim.min_lr_ratio": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "optim.grad_clip": (_optional(lambda v: _number(v) and v >= 0), "a number ≥ 0 (0 or null: no clipping)"),
    "optim.betas": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_number(b) and 0 <= b < 1 for b in v),
        "two numbers in [0, 1), e.g. [0.9, 0.999]",
    ),
    "validation.max_new_tokens": (_at_least(1), "a positive integer"),
    "validation.num_options": (_at_least(2), "an integer ≥ 2"),
    "validation.compare_budget": (_optional(_at_least(1)), "a positive integer (visual tokens) or null"),
    "validation.compare_allocators": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(n, str) and n for n in v),
        "a non-empty list of allocator names, e.g. [ata, uniform]",
    ),
    "data.window": (_at_least(1), "a positive integer (frames per segment)"),
    "data.eval_window": (_optional(_at_least(1)), "a positive integer or null"),
    "data.max_frames": (_at_least(1), "a positive integer"),
    "data.fps": (lambda v: _number(v) and v > 0, "a number > 0 (frames sampled per second)"),
    "data.max_long_edge": (_optional(_at_least(16)), "an integer ≥ 16 (pixels) or null"),
    "data.num_workers": (_at_least(0), "an integer ≥ 0"),
    "data.max_samples": (_optional(_at_least(1)), "a positive integer or null"),
    "data.max_eval_samples": (_optional(_at_least(1)), "a positive integer or null"),
    "data.max_length": (_optional(_at_least(1)), "a positive integer or null"),
    "data.cache_clips": (lambda v: isinstance(v, bool), "true or false"),
    "model.compressor.k_max": (_at_least(1), "a positive integer (memory tokens per segment)"),
}


def _typed_defaults(tree: Mapping[str, Any], prefix: str = "") -> dict[str, type]:
    """``dotted key → type`` of every default that is a flag, an integer, a float or a string."""
    out: dict[str, type] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_typed_defaults(value, f"{dotted}."))
        elif isinstance(value, (bool, int, float, str)):
            out[dotted] = type(value)
    return out


TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return _int(value)
    if kind is float:
        return _number(value)
    return isinstance(value, str)


def _get(tree: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_values(recipe: Mapping[str, Any], source: str) -> None:
    """Raise a :class:`ConfigError` for the first value of the wrong type or out of range."""
    for key, kind in _typed_defaults(DEFAULTS).items():
        present, value = _get(recipe, key)
        if present and key not in RULES and not _type_ok(value, kind):
            raise ConfigError(f"recipe {source!r}: {key}={value!r} must be {TYPE_WORDS[kind]}")
    for key, (check, meaning) in RULES.items():
        present, value = _get(recipe, key)
        if present and not check(value):
            raise ConfigError(f"recipe {source!r}: {key}={value!r} must be {meaning}")
    model = recipe.get("model")
    if isinstance(model, Mapping):
        from tempo_kit.model.config import check_model_settings

        check_model_settings(model, f"recipe {source!r}: model.")
