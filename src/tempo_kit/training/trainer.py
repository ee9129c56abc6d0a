"""The Lightning ``Trainer`` a recipe's ``trainer:`` section describes: strategy, precision,
loggers, callbacks, checkpointing, and the gradient accumulation that makes the global batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError
from tempo_kit.training.run_folder import CHECKPOINT_DIR, LAST_CHECKPOINT


def micro_batches_per_step(global_batch: int, micro_batch: int, world_size: int) -> int:
    """Gradient-accumulation steps that make ``micro × world × accumulation == global``."""
    per_step = micro_batch * world_size
    if global_batch % per_step:
        raise ConfigError(
            f"trainer.global_batch_size={global_batch} is not divisible by micro_batch_size × devices × nodes "
            f"= {micro_batch} × {world_size}; change trainer.global_batch_size or trainer.micro_batch_size"
        )
    return global_batch // per_step


def build_trainer(recipe: Mapping[str, Any], verb: str, module=None, callbacks: Sequence = ()):
    """A Lightning ``Trainer`` from ``trainer:``, with accumulation set for the global batch size.

    Loggers, extra callbacks and the profiler come from the recipe; ``callbacks`` are added to
    those and to the kit's own (step logging, checkpointing).
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    from tempo_kit.training.callbacks import StepLogger
    from tempo_kit.training.loggers import RewindLogs, TrackerRuns, build_loggers
    from tempo_kit.training.progress import ProgressLines, use_progress_bar
    from tempo_kit.training.recipe_callbacks import build_callbacks
    from tempo_kit.training.resume import RandomState

    settings = recipe["trainer"]
    output_dir = Path(recipe["run"]["output_dir"])
    progress_bar = use_progress_bar(settings["enable_progress_bar"])
    lines = None if progress_bar else ProgressLines(settings["log_every_n_steps"])
    callbacks = [
        StepLogger(settings["log_every_n_steps"], lines),
        *build_callbacks(settings.get("callbacks")),
        *callbacks,
    ]
    if verb == "fit":
        from tempo_kit.training.interrupt import SaveOnInterrupt

        callbacks.append(SaveOnInterrupt(output_dir / CHECKPOINT_DIR / LAST_CHECKPOINT))
        callbacks.append(RandomState())
        callbacks.append(
            ModelCheckpoint(
                dirpath=output_dir / CHECKPOINT_DIR,
                filename="step{step:07d}",
                auto_insert_metric_name=False,
                every_n_train_steps=settings["checkpoint_every_n_steps"],
                save_top_k=1,
                save_last=True,
            )
        )
    from tempo_kit.devices import check_accelerator

    check_accelerator(settings["accelerator"])
    loggers = build_loggers(settings.get("loggers"), output_dir, recipe["run"]["name"])
    callbacks.append(TrackerRuns(output_dir))
    callbacks.append(RewindLogs())
    grad_clip = recipe["optim"]["grad_clip"]
    try:
        has_val = bool(recipe["data"].get("val_files"))  # no validation loop without validation data
        trainer = _lightning_trainer(
            settings, grad_clip, output_dir, callbacks, loggers, progress_bar, has_val
        )
    except (ValueError, TypeError) as error:  # Lightning's MisconfigurationException is a ValueError
        reason = " ".join(str(error).split())
        raise ConfigError(
            f"Lightning refuses the recipe's trainer settings: {reason} (change them under trainer:, "
            "e.g. trainer.devices / trainer.accelerator)"
        ) from None
    trainer.accumulate_grad_batches = micro_batches_per_step(
        settings["global_batch_size"], settings["micro_batch_size"], trainer.world_size
    )
    return trainer


def _lightning_trainer(
    settings, grad_clip, output_dir, callbacks, loggers, progress_bar, has_val=True
):
    from lightning.pytorch import Trainer

    from tempo_kit.training.resume import AtomicCheckpointIO
    from tempo_kit.training.strategies import build_strategy, trainer_precision

    return Trainer(
        accelerator=settings["accelerator"],
        devices=settings["devices"],
        num_nodes=settings["num_nodes"],
        strategy=build_strategy(settings["strategy"], settings["precision"]),
        precision=trainer_precision(settings["strategy"], settings["precision"]),
        max_epochs=settings["max_epochs"],
        max_steps=settings["max_steps"],
        gradient_clip_val=grad_clip if grad_clip else None,
        gradient_clip_algorithm="norm",
        log_every_n_steps=settings["log_every_n_steps"],
        val_check_interval=settings["val_check_interval"],
        check_val_every_n_epoch=settings["check_val_every_n_epoch"],
        limit_train_batches=settings.get("limit_train_batches"),
        limit_val_batches=settings["limit_val_batches"] if has_val else 0,
        limit_test_batches=settings["limit_test_batches"],
        fast_dev_run=settings.get("fast_dev_run", False),
        num_sanity_val_steps=settings["num_sanity_val_steps"],
        enable_progress_bar=progress_bar,
        deterministic=settings["deterministic"],
        profiler=settings.get("profiler"),
        default_root_dir=str(output_dir),
        logger=loggers or False,
        callbacks=callbacks,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the data module's sampler shards and resumes itself
    )
