"""``TempoModule``: the LightningModule that trains a ``TempoModel`` from a recipe.

The model is built in ``configure_model()`` (so FSDP can shard it as it is created) either from
the recipe's ``model:`` section or from a previous stage's exported folder (``run.init_from``).
Trainability (full / LoRA / frozen per part), named parameter groups with per-part learning
rates, AdamW and a warm-up + cosine schedule per optimizer step all come from the recipe, so every
stage of the paper runs through this one class. The router stage adds a relevance loss on
segments labelled by ``relevant_spans`` (``router:`` section, :mod:`tempo_kit.training.router`).
Validation reports the loss (each batch weighted by its samples) and, on batches with reference
answers, the accuracy of the greedily generated option letter, accumulated across batches and
devices with torchmetrics (:mod:`tempo_kit.training.scoring`); with the router objective on, also
the relevance AUROC and average precision on labelled segments; with ``validation.compare_budget``,
also the accuracy at that budget under each of ``validation.compare_allocators``
(:mod:`tempo_kit.training.budget_compare`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule

from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.training.scoring import (
    computed_eval_metrics,
    eval_metrics,
    normalise_answer,  # noqa: F401  (its import path before the split)
    prompt_only,
    split_answers,
)
from tempo_kit.types import TempoBatch


def build_model(recipe: Mapping[str, Any], load_weights: bool = True):
    """A ``TempoModel`` from ``run.init_from`` (a kit-format folder or a hub id) or from ``model:``.

    ``load_weights=False`` builds it on the meta device (what FSDP ranks other than 0 do).
    """
    from tempo_kit.model import TempoModel

    init_from = recipe["run"].get("init_from")
    if init_from:
        from tempo_kit.hub import is_hub_model, model_folder

        if not is_hub_model(init_from) and not Path(str(init_from)).expanduser().is_dir():
            raise CheckpointError(
                f"run.init_from={str(init_from)!r} is not a local folder; point it at a previous stage's "
                "exported model (<output_dir>/final), a hub id (org/name), or set run.init_from=null"
            )
        path = model_folder(init_from, what="run.init_from")
        settings = model_settings(recipe)
        overrides = runtime_overrides(settings)
        overrides.update(component_overrides(settings, path))
        from tempo_kit.training.features import check_feature_recipe, trains_from_features

        check_feature_recipe(recipe)
        if trains_from_features(recipe):  # the decoder alone: the store holds the frozen parts' output
            from tempo_kit.model.stored import stored_features_model

            return stored_features_model(str(path), load_weights=load_weights, **overrides)
        return TempoModel.from_pretrained(str(path), load_weights=load_weights, **overrides)
    return TempoModel.from_config(model_settings(recipe), load_weights=load_weights)


#: Component settings a model loaded from ``run.init_from`` can still take: how its weights are
#: held and run, not what they are.
LOADED_COMPONENT_KEYS = ("dtype", "attn_implementation")


def component_overrides(settings: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """``model.<part>.*`` settings for a model loaded from ``path``: those that can apply to loaded
    weights (:data:`LOADED_COMPONENT_KEYS`) apply; any other that differs from the saved model's
    is refused by name rather than silently dropped. ``pretrained`` is superseded by the folder."""
    from tempo_kit.model import COMPONENTS
    from tempo_kit.model.storage import read_config

    saved = read_config(path, COMPONENTS)
    overrides: dict[str, dict[str, Any]] = {}
    for part in COMPONENTS:
        asked = settings.get(part) or {}
        if isinstance(asked, str):
            asked = {"name": asked}
        for key, value in asked.items():
            if key == "pretrained":
                continue
            if key in LOADED_COMPONENT_KEYS:
                overrides.setdefault(part, {})[key] = value
            elif saved.get(part, {}).get(key) != value:
                raise ConfigError(
                    f"model.{part}.{key}={value!r} cannot apply to the model loaded from run.init_from={path} "
                    f"(it was built with {key}={saved.get(part, {}).get(key)!r}); remove model.{part}.{key} "
                    "from the recipe (e.g. ~model."
                    f"{part}.{key}) or train from model: with run.init_from=null"
                )
    return overrides


def model_settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """``model:`` plus the frame geometry the data is read with, which the model records so that
    inference reads videos as training did."""
    settings = dict(recipe["model"])
    data = recipe.get("data") or {}
    if "preprocessing" in data:
        settings.setdefault("preprocessing", data["preprocessing"])
    return settings


#: ``model:`` keys that may change when a stage starts from the previous stage's folder.
RUNTIME_KEYS = (
    "allocator",
    "reduction",
    "budget",
    "k_min",
    "max_context",
    "train_max_context",
    "answer_room",
    "context_cut",
    "preprocessing",
)


def runtime_overrides(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime settings of ``model:`` a stage may change over its ``init_from`` (e.g. context 16384)."""
    return {key: model_cfg[key] for key in RUNTIME_KEYS if key in model_cfg}


class TempoModule(LightningModule):
    """Trains, validates and tests a ``TempoModel`` as a recipe says.

    Args:
        recipe: the resolved recipe (a plain mapping, saved in every checkpoint).
    """

    def __init__(self, recipe: Mapping[str, Any]) -> None:
        super().__init__()
        from tempo_kit.recipes import to_dict

        self.recipe = to_dict(recipe)
        self.save_hyperparameters({"recipe": self.recipe})
        self.model = None
        self.trainability = None
        from tempo_kit.training.router import RouterSettings

        self.router = RouterSettings.from_recipe(self.recipe)
        from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

        self.val_auroc, self.val_average_precision = BinaryAUROC(), BinaryAveragePrecision()
        self._router_batches = 0
        self._reset_step_stats()
        self.eval_metrics = eval_metrics()
        from tempo_kit.training.budget_compare import BudgetComparison

        self.budget_comparison = BudgetComparison.from_recipe(self.recipe)
        self.last_eval_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------------------ model set-up
    def configure_model(self) -> None:
        from tempo_kit.training.strategies import is_fsdp

        fsdp = self._trainer is not None and is_fsdp(self.trainer.strategy)
        if self.model is None:  # under FSDP only rank 0 reads weights; the others get its shards
            self.set_up_model(load_weights=not fsdp or self.trainer.is_global_zero)
        if fsdp:
            self.trainer.strategy.shard(self.model)  # once: a sharded model is left as it is

    def set_up_model(self, load_weights: bool = True) -> None:
        """Build the model with its trainability, router set-up and activation checkpointing.

        ``configure_model()`` calls it; a sharded run calls it on rank 0 before the other
        processes start, so the model's structure is checked and rank 0's weights loaded first.
        With ``load_weights=False`` everything, LoRA adapters included, is built on the meta
        device (no memory, no weight file read).
        """
        from tempo_kit.training.trainability import apply_trainability

        self.model = build_model(self.recipe, load_weights=load_weights)
        with contextlib.nullcontext() if load_weights else torch.device("meta"):
            self.trainability = apply_trainability(self.model, self.recipe["trainable"], self.recipe["lora"])
            if self.router.active:
                self._set_up_router()
        self.model.train()  # pretrained HF models load in eval mode; LoRA dropout needs train mode
        for part, enabled in self.recipe["trainer"]["gradient_checkpointing"].items():
            component = getattr(self.model, part, None)
            if enabled and self._part_trains(part) and hasattr(component, "gradient_checkpointing_enable"):
                component.gradient_checkpointing_enable()  # per block; FSDP2 composes with it

    def _set_up_router(self) -> None:
        """The router stage's prompt, and the relevance direction as a parameter if it trains."""
        from tempo_kit.training.router import make_direction_trainable

        compressor = self.model.compressor
        if not hasattr(compressor, "train_prompt"):
            raise ConfigError(
                f"router.weight > 0: the {type(compressor).__name__} compressor has no relevance score to train"
            )
        from tempo_kit.compressors.qwen3_vl import resolve_prompt

        compressor.train_prompt = resolve_prompt(self.router.prompt)
        if self.router.train_direction:
            direction = make_direction_trainable(compressor)
            self.trainability.trainable["compressor"] = (
                self.trainability.trainable.get("compressor", 0) + direction.numel()
            )

    def on_fit_start(self) -> None:
        if self.trainability is not None and self.trainer.is_global_zero:
            print("trainable parameters per part:\n" + str(self.trainability), flush=True)

    def _part_trains(self, part: str) -> bool:
        modes = self.recipe["trainable"]
        if part == "compressor":
            return modes["compressor"] != "frozen" or modes["memory_tokens"] != "frozen"
        return modes[part] != "frozen"

    # ----------------------------------------------------------------------------------- training
    def _reset_step_stats(self) -> None:
        # tensors stay on the device until the optimizer step: no host sync per micro-batch
        self.step_stats = {"loss_sum": torch.zeros(()), "batches": 0, "samples": 0, "visual_tokens": 0}

    def forward(self, batch: TempoBatch):
        return self.model(batch)

    def _losses(self, batch: TempoBatch):
        """``(total loss, router loss or None, model output or None)`` as the ``router:`` section weighs them."""
        from tempo_kit.training.router import router_loss

        settings = self.router
        if settings.router_only:
            relevance, output = self.model.compress(batch).relevance, None
        else:
            output = self.model(batch)
            relevance = output.relevance
        routing = router_loss(batch, relevance) if settings.active else None
        if settings.router_only:
            if routing is None:
                raise ConfigError(
                    f"router stage: batch {batch.ids} has no segment labelled by relevant_spans; give the "
                    "training rows relevant_spans (data.require_spans=true skips rows without them)"
                )
            return settings.weight * routing, routing, None
        loss = output.loss if settings.answer_weight == 1 else settings.answer_weight * output.loss
        if routing is not None:
            loss = loss + settings.weight * routing
        return loss, routing, output

    def training_step(self, batch: TempoBatch, batch_idx: int) -> torch.Tensor:
        loss, routing, output = self._losses(batch)
        if routing is not None:
            self.log("router_loss", routing.detach(), prog_bar=True, logger=False, batch_size=len(batch))
        stats = self.step_stats
        stats["loss_sum"] = stats["loss_sum"].to(loss.device) + loss.detach().float()
        stats["batches"] += 1
        stats["samples"] += len(batch)
        if output is not None and getattr(output, "visual_tokens", None) is not None:
            stats["visual_tokens"] += int(sum(output.visual_tokens))  # host-side counts: no sync
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=len(batch))
        return loss

    def take_step_stats(self) -> dict[str, float]:
        """This optimizer step's mean loss / samples / visual tokens over micro-batches and ranks.

        Collective under DDP/FSDP: every rank must call it once per optimizer step.
        """
        stats = self.step_stats
        counts = torch.tensor(
            [stats["batches"], stats["samples"], stats["visual_tokens"]], dtype=torch.float64, device=self.device
        )
        loss_sum = stats["loss_sum"].to(device=self.device, dtype=torch.float64).reshape(1)
        values = torch.cat([loss_sum, counts])
        values = self.trainer.strategy.reduce(values, reduce_op="sum")
        self._reset_step_stats()
        loss_sum, batches, samples, visual = values.tolist()
        return {
            "loss": loss_sum / max(batches, 1),
            "samples": samples,
            "visual_tokens_per_sample": visual / max(samples, 1),
        }

    def configure_optimizers(self):
        from tempo_kit.training.optim import build_optimizer, build_scheduler, param_groups

        optim = self.recipe["optim"]
        groups = param_groups(self.model, optim["lr"], optim["weight_decay"])
        optimizer = build_optimizer(groups, optim["betas"], optim["eps"], optim["weight_decay"])
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(
            optimizer, total, optim["warmup_ratio"], optim["scheduler"], optim["min_lr_ratio"]
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------- validation / test
    def _eval_step(self, batch: TempoBatch) -> None:
        if self.router.router_only:
            output = None
            relevance = self.model.compress(batch).relevance
        else:
            output = self.model(batch)
            relevance = output.relevance
        metrics = self.eval_metrics
        if output is not None and output.loss is not None and torch.isfinite(output.loss):
            metrics["loss"].update(output.loss.detach().float(), weight=len(batch))
            metrics["loss_samples"].update(len(batch))
        if self.router.active and relevance is not None:
            from tempo_kit.training.router import labelled_segments

            scores, labels = labelled_segments(batch, relevance)
            if len(scores):
                self.val_auroc.update(scores.float(), labels.long())
                self.val_average_precision.update(scores.float(), labels.long())
                self._router_batches += 1
        settings = self.recipe["validation"]
        if settings["generate"] and batch.answers and any(a is not None for a in batch.answers):
            prompt, comparison = prompt_only(batch), self.budget_comparison
            compressed = None if comparison is None else self.model.compress(prompt, skip_text=True)
            generated = self.model.generate(
                prompt, max_new_tokens=int(settings["max_new_tokens"]), compressed=compressed
            )
            if comparison is not None:
                comparison.update(self.model, prompt, compressed, batch.answers, settings)
            from tempo_kit.evaluation.metrics import choice_classes

            choices, references, open_hits = split_answers(
                list(generated.texts), list(batch.answers), int(settings["num_options"])
            )
            if references:
                metrics["accuracy"].update(*(t.to(self.device) for t in choice_classes(choices, references)))
                metrics["scored"].update(len(references))
            if open_hits:
                metrics["open_accuracy"].update(sum(open_hits) / len(open_hits), weight=len(open_hits))
                metrics["open_scored"].update(len(open_hits))

    def _eval_epoch_end(self, stage: str) -> None:
        from tempo_kit.training.callbacks import emit

        metrics = computed_eval_metrics(self.eval_metrics, stage)
        if self.budget_comparison is not None:
            metrics.update(self.budget_comparison.compute(stage))
        if self.router.active and self._router_batches:
            metrics[f"{stage}/auroc"] = float(self.val_auroc.compute())
            metrics[f"{stage}/average_precision"] = float(self.val_average_precision.compute())
        self.val_auroc.reset()
        self.val_average_precision.reset()
        self._router_batches = 0
        self.last_eval_metrics = metrics
        for key, value in metrics.items():  # for callbacks (EarlyStopping) and the progress bar
            self.log(key, value, prog_bar=key.endswith("accuracy"), logger=False, rank_zero_only=True)
        if metrics:
            emit(self.trainer, metrics, self.trainer.global_step)

    def validation_step(self, batch: TempoBatch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: TempoBatch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tempo_kit_recipe"] = self.recipe

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from tempo_kit.training.resume import check_checkpoint_shapes

        source = getattr(self._trainer, "ckpt_path", None) or "the checkpoint"
        check_checkpoint_shapes(checkpoint.get("state_dict") or {}, self.state_dict(), str(source))
