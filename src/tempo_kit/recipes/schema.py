"""The recipe schema: every key a recipe may set, with its default, and the values some keys take.

Sections listed in :data:`OPEN_SECTIONS` are not fixed here: their keys are checked against the
signature of what they configure (see :mod:`tempo_kit.recipes.components`).
"""

from __future__ import annotations

from typing import Any

from tempo_kit.parts import TRAINABLE_PARTS

#: The parts whose trainability a recipe sets. ``compressor`` is the SVLM (vision tower and
#: language model) without its memory tokens, which are their own part (paper Table A).
PARTS: tuple[str, ...] = TRAINABLE_PARTS

#: Trainability modes: ``full`` trains every weight, ``lora`` injects peft adapters and trains
#: only those, ``frozen`` trains nothing.
MODES: tuple[str, ...] = ("full", "lora", "frozen")

#: Parts that are single tensors or a small layer: LoRA makes no sense for them.
FULL_OR_FROZEN_ONLY: tuple[str, ...] = ("memory_tokens", "projector")

#: Strategies a recipe can name under ``trainer.strategy.name``.
STRATEGIES: tuple[str, ...] = ("auto", "single", "ddp", "fsdp")

#: Profilers a recipe can name under ``trainer.profiler`` (Lightning's own).
PROFILERS: tuple[str | None, ...] = (None, "simple", "advanced", "pytorch")

#: The default LoRA targets: every attention and MLP projection of a Qwen decoder layer.
QWEN_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

#: Every recipe key with its default. Paper values (Appendix C, Table A) are the stage-2 ones
#: (broad SFT) unless a stage recipe says otherwise; see ``recipes/base.yaml``.
DEFAULTS: dict[str, Any] = {
    "run": {
        # run folder name; the run folder is ``output_dir``
        "name": "tempo",
        "output_dir": "outputs/${run.name}",
        "seed": 0,
        # a kit-format TempoModel folder (a previous stage's ``final/``) to start from; null
        # builds the model from ``model:`` (pretrained SVLM and LLM, fresh projector/memory)
        "init_from": None,
        # write the merged, kit-format model to ``<output_dir>/final`` at the end of fit
        "export_final": True,
    },
    # TempoModel.from_config arguments; the four component specs are registry specs
    "model": {
        "compressor": {"name": "qwen3_vl"},
        "projector": {"name": "linear"},
        "decoder": {"name": "hf_causal_lm"},
        "allocator": {"name": "ata"},
    },
    "trainable": {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"},
    # peft LoraConfig arguments per part, used when that part is ``lora``; ``module`` is the
    # dotted path inside the component where adapters go (the SVLM's language model by default)
    "lora": {
        "compressor": {
            "module": "svlm.language_model",
            "r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "target_modules": list(QWEN_LORA_TARGETS),
        },
        "decoder": {
            "module": "model",
            "r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "target_modules": list(QWEN_LORA_TARGETS),
        },
    },
    "optim": {
        # per-part learning rates (Table A: 1e-5 for LLM, projector, memory; 2e-6 for the SVLM)
        "lr": {"compressor": 2.0e-6, "memory_tokens": 1.0e-5, "projector": 1.0e-5, "decoder": 1.0e-5},
        "weight_decay": 0.0,  # Appendix C.1
        "betas": [0.9, 0.999],  # AdamW defaults (torch / Hugging Face Trainer)
        "eps": 1.0e-8,
        "scheduler": "cosine",  # cosine | linear | constant (all with linear warm-up)
        "warmup_ratio": 0.03,  # Appendix C.1
        "min_lr_ratio": 0.0,  # cosine floor as a fraction of each group's peak lr
        "grad_clip": 1.0,  # max grad norm (Hugging Face Trainer's default in the LLaVA code base)
    },
    # TempoDataModule arguments (annotation files, media root, frames, window, workers ...)
    "data": {},
    # the router stage's relevance objective (tempo_kit.training.router.RouterSettings)
    "router": {
        "weight": 0.0,  # relevance loss weight; 0 = off (every stage of the paper)
        "answer_weight": 1.0,  # answer loss weight; 0 = router only (no LLM pass)
        "train_direction": False,  # also train w_Yes − w_No (kit format only)
        "prompt": "routing",  # SVLM system prompt while training: routing | standard | text
    },
    "validation": {
        # greedy generation of the answer on validation batches that carry reference answers
        "generate": True,
        "max_new_tokens": 8,
        "num_options": 4,  # options per multiple-choice question when a row does not say
        # also answer at this binding budget once per allocator below, from the same compressor
        # pass (the demo's ATA-vs-even-split printout); null = off
        "compare_budget": None,
        "compare_allocators": ["ata", "uniform"],
    },
    "trainer": {
        "global_batch_size": 128,  # samples per optimizer step over all devices (Table A)
        "micro_batch_size": 1,  # samples per device per forward pass
        "max_epochs": 1,  # Table A
        "max_steps": -1,
        "precision": "bf16-mixed",  # Appendix C.1
        "accelerator": "auto",
        "devices": "auto",
        "num_nodes": 1,
        # strategy name plus each strategy's options; only the named strategy's options are used,
        # so ``trainer.strategy.name=ddp`` on the command line switches cleanly
        "strategy": {
            "name": "auto",  # auto | single | ddp | fsdp
            "process_group_backend": None,  # nccl on GPUs, gloo on CPUs when null
            "ddp": {"find_unused_parameters": False, "static_graph": False},
            "fsdp": {
                "sharding_strategy": "FULL_SHARD",  # FULL_SHARD | SHARD_GRAD_OP (keep blocks gathered)
                "state_dict_type": "sharded",  # sharded checkpoints: each rank saves its shard
                "cpu_offload": False,  # FSDP2's CPUOffloadPolicy: shards, gradients and optimizer on the CPU
            },
        },
        # gradient (activation) checkpointing per component (Appendix C.1)
        "gradient_checkpointing": {"compressor": True, "decoder": True},
        # where metrics go: Lightning loggers by name (tensorboard, csv, wandb, mlflow) and the kit's
        # metrics.jsonl (jsonl); an entry may be {name: wandb, offline: true, ...} with the
        # logger's own arguments (see tempo_kit.training.loggers)
        "loggers": ["tensorboard", "jsonl"],
        # extra Lightning callbacks: [{name: LearningRateMonitor}, {name: EarlyStopping, monitor:
        # val/loss}] or package.module:Class for your own, with their arguments
        "callbacks": [],
        # Lightning's profiler: null, simple, advanced or pytorch (its summary prints when the run ends)
        "profiler": None,
        # Lightning's limits for smoke runs: a fraction or a number of training batches per epoch,
        # and fast_dev_run (true or n: n batches of each loop, no checkpoints, no loggers)
        "limit_train_batches": None,
        "fast_dev_run": False,
        # also the interval of the printed progress lines when stdout is not a terminal
        "log_every_n_steps": 10,
        "val_check_interval": None,
        "check_val_every_n_epoch": 1,
        "limit_val_batches": None,
        "limit_test_batches": None,
        "num_sanity_val_steps": 0,
        "checkpoint_every_n_steps": 500,
        # Lightning's bar when stdout is a terminal; in a log file or a SLURM log (or with false)
        # a plain line every log_every_n_steps steps instead
        "enable_progress_bar": True,
        "deterministic": False,
        # torch intra-op CPU threads per process (null: torch's default, one per core). On a
        # small CPU machine whose data workers decode at the same time, 1 avoids oversubscription
        "cpu_threads": None,
    },
}

#: Sections whose keys are not fixed by :data:`DEFAULTS` but checked against a signature.
OPEN_SECTIONS = ("model", "data", "lora.compressor", "lora.decoder")


def model_keys() -> list[str]:
    """Keys ``TempoModel.from_config`` reads (the fields of ``TempoConfig``)."""
    from dataclasses import fields

    from tempo_kit.model.config import TempoConfig

    return [f.name for f in fields(TempoConfig)]
