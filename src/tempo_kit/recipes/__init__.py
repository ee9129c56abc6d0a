"""Recipes: one YAML file is one whole run (model, trainability, optimisation, data, trainer).

A recipe may name a ``base:`` recipe (a path relative to itself) that it overrides key by key, so
the four stages share one file of paper defaults and each states only what differs. Every key has
a documented default in :data:`DEFAULTS`; command-line overrides use omegaconf's dotted form
(``optim.lr.decoder=2e-5``) and ``~key`` deletes a key (a component argument falls back to its
builder's default). Validation runs before anything is built: unknown keys get a did-you-mean,
component arguments are bound to the registered builders' signatures, checkpoint paths must be
local directories.

Modules: :mod:`~tempo_kit.recipes.schema` (keys and defaults), :mod:`~tempo_kit.recipes.load`
(files and ``base:`` chains), :mod:`~tempo_kit.recipes.overrides` (command line),
:mod:`~tempo_kit.recipes.keys`, :mod:`~tempo_kit.recipes.validate`,
:mod:`~tempo_kit.recipes.components` and :mod:`~tempo_kit.recipes.paths` (checks),
:mod:`~tempo_kit.recipes.save` (writing out) and
:mod:`~tempo_kit.recipes.shipped` (the recipes inside the package, by name). A mapping marked
``_replace_: true`` replaces its ``base:`` recipe's mapping instead of merging into it.
"""

from tempo_kit.hub import LOCAL_ROOTS
from tempo_kit.recipes.components import check_arguments
from tempo_kit.recipes.keys import check_keys
from tempo_kit.recipes.load import load_recipe
from tempo_kit.recipes.overrides import apply_overrides
from tempo_kit.recipes.paths import check_local_path
from tempo_kit.recipes.save import format_recipe, save_recipe, to_dict
from tempo_kit.recipes.schema import (
    DEFAULTS,
    FULL_OR_FROZEN_ONLY,
    MODES,
    OPEN_SECTIONS,
    PARTS,
    QWEN_LORA_TARGETS,
    STRATEGIES,
    model_keys,
)
from tempo_kit.recipes.validate import validate_recipe

__all__ = [
    "DEFAULTS",
    "FULL_OR_FROZEN_ONLY",
    "LOCAL_ROOTS",
    "MODES",
    "OPEN_SECTIONS",
    "PARTS",
    "QWEN_LORA_TARGETS",
    "STRATEGIES",
    "apply_overrides",
    "check_arguments",
    "check_keys",
    "check_local_path",
    "format_recipe",
    "load_recipe",
    "model_keys",
    "save_recipe",
    "to_dict",
    "validate_recipe",
]
