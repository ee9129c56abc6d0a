"""The docs' table of the shipped recipes' key settings (tested against the YAML files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from tempo_kit.recipes.load import load_recipe


def recipe_table(paths: Sequence[str | Path]) -> str:
    """A Markdown table of the recipes' key settings (the docs' recipes page embeds it, tested)."""
    header = (
        "| recipe | starts from | SVLM | memory tokens | projector | LLM | lr SVLM | lr LLM, projector, memory "
        "| global batch | max frames | window | k_max | context | epochs |"
    )
    rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for path in paths:
        cfg = load_recipe(path, check_paths=False)
        trainable = cfg.trainable
        rows.append(
            "| "
            + " | ".join(
                [
                    f"`{Path(path).name}`",
                    f"`{cfg.run.init_from}`" if cfg.run.init_from else "base checkpoints",
                    trainable.compressor,
                    trainable.memory_tokens,
                    trainable.projector,
                    trainable.decoder,
                    _lr_text(cfg, ["compressor"]),
                    _lr_text(cfg, ["decoder", "projector", "memory_tokens"]),
                    str(cfg.trainer.global_batch_size),
                    str(cfg.data.get("max_frames", "—")),
                    str(cfg.data.get("window", "—")),
                    str(cfg.model.compressor.get("k_max", "—")),
                    str(cfg.model.get("train_max_context", "—")),
                    str(cfg.trainer.max_epochs),
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def _lr_text(cfg: DictConfig, parts: Sequence[str]) -> str:
    """The distinct learning rates of the trainable ``parts``, or a dash when all are frozen."""
    values = sorted({float(cfg.optim.lr[p]) for p in parts if cfg.trainable[p] != "frozen"})
    return " / ".join(f"{v:.0e}" for v in values) or "—"
