"""The end of a fit: the trained model, LoRA merged, written in the kit's format (``<output_dir>/final``).

That folder is what the next stage's ``run.init_from``, ``tempo-kit infer --model`` and
``TempoModel.from_pretrained`` load; a LoRA run's adapters go beside it in peft's format. Under
FSDP2 the shards are gathered to rank 0 first, into rank 0's own model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The data splits a recipe names files for, in the order the model card lists them.
SPLITS = ("train", "val", "test")


def training_details(trainer, module) -> dict[str, Any]:
    """What the model card says about a fit: the recipe (name, trainability, resolved text), each
    data file with the rows read from it, and the last logged metrics."""
    from tempo_kit.recipes import format_recipe

    recipe = module.recipe
    datamodule = getattr(trainer, "datamodule", None)
    data = []
    for split in SPLITS:
        entries = getattr(datamodule, f"{split}_entries", None) or []
        dataset = (getattr(datamodule, "datasets", None) or {}).get(split)
        parts = getattr(dataset, "datasets", None) or ([dataset] if dataset is not None and len(entries) == 1 else [])
        for index, entry in enumerate(entries):
            rows = len(parts[index]) if index < len(parts) else "-"
            data.append({"split": split, "file": str(entry["path"]), "rows": rows})
    metrics: dict[str, Any] = {}
    for key, value in {**trainer.callback_metrics, **module.last_eval_metrics}.items():
        number = float(value)
        metrics[str(key)] = int(number) if number.is_integer() else round(number, 6)
    return {
        "name": recipe["run"].get("name"),
        "trainable": dict(recipe.get("trainable") or {}),
        "data": data,
        "metrics": metrics,
        "recipe": format_recipe(recipe) if isinstance(recipe, Mapping) else None,
    }


def export_final(trainer, module, out_dir: str | Path) -> Path | None:
    """Write the trained model, LoRA merged, in the kit's format (what ``run.init_from`` loads).

    Rank 0 writes. Under FSDP2 the full state dict is first gathered to rank 0's CPU memory and
    rank 0's own model takes it in place of its shards (no second model is built); the model is
    then saved as an unsharded run's would be. A LoRA run also keeps each part's adapter in peft's
    format in ``adapters/<part>/`` beside the folder.
    """
    from tempo_kit.training.adapters import ADAPTERS_DIR, save_adapters
    from tempo_kit.training.strategies import is_fsdp
    from tempo_kit.training.trainability import has_lora, merge_lora

    out = Path(out_dir)
    model = module.model
    if is_fsdp(trainer.strategy):
        from tempo_kit.training.fsdp2 import gather_full_state, hold_full_weights

        state = gather_full_state(model)  # collective
        if trainer.is_global_zero:
            hold_full_weights(model, state)
    if trainer.is_global_zero:
        if has_lora(model):
            recipe = module.recipe
            save_adapters(model, recipe["trainable"], recipe["lora"], out.parent / ADAPTERS_DIR)
            merge_lora(model)
        from tempo_kit.model.stored import with_frozen_parts

        model = with_frozen_parts(model)  # a run from a feature store gets its compressor back
        model.save_pretrained(str(out), training=training_details(trainer, module))
    if trainer.world_size > 1:
        trainer.strategy.barrier("export")
    return out if trainer.is_global_zero else None
