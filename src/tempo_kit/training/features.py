"""The rules of a stage-3 run from a feature store (``data.features``), checked before any work.

A store holds the output of the compressor, memory tokens and projector of one model
(:mod:`tempo_kit.data.features`), so the run must start from that model (``run.init_from``), keep
those parts frozen, and train nothing that needs the SVLM (the router objective).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tempo_kit.data.features import FeatureStoreError

#: Parts a store fixes: they must stay frozen while training from it.
STORED_PARTS = ("compressor", "memory_tokens", "projector")


def trains_from_features(recipe: Mapping[str, Any]) -> bool:
    return bool((recipe.get("data") or {}).get("features"))


def check_feature_recipe(recipe: Mapping[str, Any]) -> None:
    """One-line refusal of a recipe that cannot train from its ``data.features``."""
    if not trains_from_features(recipe):
        return
    if not recipe["run"].get("init_from"):
        raise FeatureStoreError(
            "data.features needs run.init_from: the stage-2 export the store was made with "
            "(tempo-kit prepare --features --model FOLDER)"
        )
    trainable = recipe.get("trainable") or {}
    for part in STORED_PARTS:
        if trainable.get(part, "frozen") != "frozen":
            raise FeatureStoreError(
                f"trainable.{part}={trainable[part]!r}: a feature store holds the output of the frozen "
                f"{', '.join(STORED_PARTS)}; set trainable.{part}=frozen or train from videos (data.train_files)"
            )
    data = recipe.get("data") or {}
    for split in ("val_files", "test_files"):
        if data.get(split):
            raise FeatureStoreError(
                f"data.{split} is set beside data.features: its videos would need the SVLM this run does not load; "
                f"set data.{split}=null (evaluate the exported model with tempo-kit eval)"
            )
    router = recipe.get("router") or {}
    if float(router.get("weight") or 0) > 0:
        raise FeatureStoreError(
            f"router.weight={router['weight']}: the router objective trains the compressor's relevance, which a "
            "feature store fixes; set router.weight=0 or train from videos"
        )
