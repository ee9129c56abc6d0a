"""Checks on a merged recipe, run before anything is built; the first problem found is raised."""

from __future__ import annotations

from omegaconf import DictConfig

from tempo_kit.errors import ConfigError, check_choice, did_you_mean
from tempo_kit.recipes.components import check_arguments, check_component, check_registry_name
from tempo_kit.recipes.paths import check_checkpoint_paths
from tempo_kit.recipes.schema import FULL_OR_FROZEN_ONLY, MODES, PARTS, PROFILERS, STRATEGIES, model_keys


def validate_recipe(cfg: DictConfig, source: str = "<recipe>", *, check_paths: bool = True) -> None:
    """Check a merged recipe: value types and ranges, modes, LoRA settings, learning rates,
    components, data, strategy."""
    from omegaconf import OmegaConf

    from tempo_kit.recipes.ranges import check_values

    check_values(OmegaConf.to_container(cfg), source)
    _check_trainable(cfg, source)
    _check_optim(cfg, source)
    _check_model(cfg, source)
    _check_data(cfg, source)
    _check_trainer(cfg, source)
    _check_router(cfg, source)
    if check_paths:
        check_checkpoint_paths(cfg, source)


def _check_trainable(cfg: DictConfig, source: str) -> None:
    """Each part's mode exists and suits the part; a LoRA part's settings are LoraConfig arguments."""
    for part in cfg.trainable:
        mode = cfg.trainable[part]
        check_choice(mode, MODES, f"recipe {source!r}: trainable.{part}")
        if mode == "lora" and part in FULL_OR_FROZEN_ONLY:
            raise ConfigError(
                f"recipe {source!r}: trainable.{part}=lora is not supported: {part} is trained fully "
                "or frozen (set it to full or frozen)"
            )
    for part in ("compressor", "decoder"):
        if cfg.trainable[part] == "lora":
            from peft import LoraConfig

            lora = {k: v for k, v in cfg.lora[part].items() if k != "module"}
            check_arguments(LoraConfig, lora, f"lora.{part} (peft LoraConfig)", source)


def _check_optim(cfg: DictConfig, source: str) -> None:
    for part in PARTS:
        lr = cfg.optim.lr.get(part)
        if cfg.trainable[part] != "frozen" and (not isinstance(lr, (int, float)) or lr <= 0):
            raise ConfigError(
                f"recipe {source!r}: optim.lr.{part}={lr!r} must be a positive number when "
                f"trainable.{part}={cfg.trainable[part]}"
            )
    if not 0.0 <= float(cfg.optim.warmup_ratio) < 1.0:
        raise ConfigError(f"recipe {source!r}: optim.warmup_ratio={cfg.optim.warmup_ratio} must be in [0, 1)")
    if cfg.optim.scheduler not in ("cosine", "linear", "constant"):
        raise ConfigError(
            f"recipe {source!r}: optim.scheduler={cfg.optim.scheduler!r} must be cosine, linear or constant"
        )
    if cfg.optim.scheduler != "cosine" and cfg.optim.min_lr_ratio:
        raise ConfigError(
            f"recipe {source!r}: optim.min_lr_ratio={cfg.optim.min_lr_ratio} is a floor of the cosine schedule; "
            f"set optim.scheduler=cosine or optim.min_lr_ratio=0"
        )


def _check_model(cfg: DictConfig, source: str) -> None:
    """Known ``model`` keys; registered components (all, or those given over ``run.init_from``)."""
    known_model_keys = model_keys()
    for key in cfg.model:
        if key not in known_model_keys:
            raise ConfigError(
                f"recipe {source!r}: unknown key 'model.{key}'{did_you_mean(key, known_model_keys)}. "
                f"Known keys under 'model': {', '.join(known_model_keys)}."
            )
    from tempo_kit.registry import PART_REGISTRIES, REDUCTIONS

    for part, registry in PART_REGISTRIES.items():
        if part != "reduction" and (cfg.run.init_from is None or part in cfg.model):
            check_component(cfg, part, registry, source)
    reduction = cfg.model.get("reduction")
    if reduction is not None:
        name = reduction if isinstance(reduction, str) else reduction.get("name")
        check_registry_name(REDUCTIONS, str(name), "model.reduction", source)


def _check_data(cfg: DictConfig, source: str) -> None:
    try:
        from tempo_kit.data import TempoDataModule
    except ImportError:
        return
    managed = {
        "tokenizer": "the decoder",
        "batch_size": "trainer.micro_batch_size",
        "seed": "run.seed",
        "skips_file": "run.output_dir: <output_dir>/skips.jsonl",
    }
    kwargs = {k: v for k, v in cfg.data.items() if k not in managed}
    for key in managed.keys() & set(cfg.data):
        raise ConfigError(
            f"recipe {source!r}: data.{key} is set by the recipe itself ({managed[key]}); remove data.{key}"
        )
    check_arguments(TempoDataModule, kwargs, "data (TempoDataModule)", source)
    _check_frame_geometry(cfg, source)


def _check_frame_geometry(cfg: DictConfig, source: str) -> None:
    """The frames the data is read at are a geometry the compressor family's processor takes
    (the model records ``data.preprocessing``; a family refuses another's chain)."""
    from tempo_kit.model.config import family_preprocessing

    compressor = cfg.model.get("compressor")
    mode = cfg.model.get("preprocessing") or cfg.data.get("preprocessing")
    if compressor is None or compressor.get("name") is None or mode is None:
        return
    try:
        family_preprocessing({"name": str(compressor.name)}, str(mode))
    except ConfigError as error:
        raise ConfigError(f"recipe {source!r}: {error}") from None


def _check_router(cfg: DictConfig, source: str) -> None:
    """The ``router:`` section's keys and weights (:class:`~tempo_kit.training.router.RouterSettings`)."""
    from omegaconf import OmegaConf

    from tempo_kit.training.router import RouterSettings

    try:
        RouterSettings.from_recipe(OmegaConf.to_container(cfg, resolve=False))
    except ConfigError as error:
        raise ConfigError(f"recipe {source!r}: {error}") from None


def _check_trainer(cfg: DictConfig, source: str) -> None:
    trainer = cfg.trainer
    for key in ("global_batch_size", "micro_batch_size"):
        value = trainer[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"recipe {source!r}: trainer.{key}={value!r} must be a positive integer")
    if trainer.global_batch_size % trainer.micro_batch_size:
        raise ConfigError(
            f"recipe {source!r}: trainer.global_batch_size={trainer.global_batch_size} is not a multiple "
            f"of trainer.micro_batch_size={trainer.micro_batch_size}"
        )
    strategy = trainer.strategy
    if not isinstance(strategy, DictConfig):
        raise ConfigError(
            f"recipe {source!r}: trainer.strategy must be a mapping with a name, got {strategy!r} "
            f"(on the command line: trainer.strategy.name={strategy})"
        )
    check_choice(strategy.name, STRATEGIES, f"recipe {source!r}: trainer.strategy.name")
    from omegaconf import OmegaConf

    from tempo_kit.training.loggers import check_installed, logger_specs
    from tempo_kit.training.recipe_callbacks import callback_specs

    as_data = OmegaConf.to_container(trainer, resolve=True)
    for spec in logger_specs(as_data["loggers"]):
        check_installed(spec)
    callback_specs(as_data["callbacks"])
    check_choice(trainer.profiler, PROFILERS, f"recipe {source!r}: trainer.profiler")
    for part in trainer.gradient_checkpointing:
        if part not in ("compressor", "decoder"):
            raise ConfigError(
                f"recipe {source!r}: trainer.gradient_checkpointing.{part}: only compressor and decoder "
                "have checkpointable layers"
            )
