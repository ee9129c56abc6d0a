"""Recipes: one YAML file is one whole run (model, trainability, optimisation, data, trainer).

A recipe may name a ``base:`` recipe (a path relative to itself) that it overrides key by key, so
the four stages share one file of paper defaults and each states only what differs. Every key has
a documented default in :data:`DEFAULTS`; command-line overrides use omegaconf's dotted form
(``optim.lr.decoder=2e-5``) and ``~key`` deletes a key (a component argument falls back to its
builder's default). Validation runs before anything is built: unknown keys get a did-you-mean,
component arguments are bound to the registered builders' signatures, checkpoint paths must be
local directories.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tempo_kit.errors import CheckpointError, ConfigError

#: The parts whose trainability a recipe sets. ``compressor`` is the SVLM (vision tower and
#: language model) without its memory tokens, which are their own part (paper Table A).
PARTS: tuple[str, ...] = ("compressor", "memory_tokens", "projector", "decoder")

#: Trainability modes: ``full`` trains every weight, ``lora`` injects peft adapters and trains
#: only those, ``frozen`` trains nothing.
MODES: tuple[str, ...] = ("full", "lora", "frozen")

#: Parts that are single tensors or a small layer: LoRA makes no sense for them.
FULL_OR_FROZEN_ONLY: tuple[str, ...] = ("memory_tokens", "projector")

#: Strategies a recipe can name under ``trainer.strategy.name``.
STRATEGIES: tuple[str, ...] = ("auto", "single", "ddp", "fsdp")

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
    "validation": {
        # greedy generation of the answer on validation batches that carry reference answers
        "generate": True,
        "max_new_tokens": 8,
        "num_options": 4,  # options per multiple-choice question when a row does not say
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
                "sharding_strategy": "FULL_SHARD",
                "state_dict_type": "sharded",  # sharded checkpoints: each rank saves its shard
                "cpu_offload": False,
                "limit_all_gathers": True,
            },
        },
        # gradient (activation) checkpointing per component (Appendix C.1)
        "gradient_checkpointing": {"compressor": True, "decoder": True},
        "log_every_n_steps": 10,
        "val_check_interval": None,
        "check_val_every_n_epoch": 1,
        "limit_val_batches": None,
        "limit_test_batches": None,
        "num_sanity_val_steps": 0,
        "checkpoint_every_n_steps": 500,
        "enable_progress_bar": True,
        "deterministic": False,
    },
}

#: Sections whose keys are not fixed by :data:`DEFAULTS` but checked against a signature.
OPEN_SECTIONS = ("model", "data", "lora.compressor", "lora.decoder")


def model_keys() -> list[str]:
    """Keys ``TempoModel.from_config`` reads (the fields of ``TempoConfig``)."""
    from dataclasses import fields

    from tempo_kit.model_config import TempoConfig

    return [f.name for f in fields(TempoConfig)]


def _did_you_mean(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ----------------------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"recipe {str(path)!r} does not exist; pass a YAML file (see recipes/)")
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError) as error:
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {error}") from error
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of sections, got a list")
    return cfg


def _load_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    """The recipe at ``path`` merged over its ``base:`` chain (bases are relative to the file)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"recipe base chain loops: {chain}")
    cfg = _read_yaml(path)
    base = cfg.pop("base", None)
    if base is None:
        return cfg
    base_path = (path.parent / str(base)).resolve()
    if not base_path.is_file():
        raise ConfigError(f"recipe {str(path)!r}: base {str(base)!r} not found (looked for {base_path})")
    return OmegaConf.merge(_load_with_bases(base_path, (*seen, path)), cfg)


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply command-line ``key=value`` (value parsed as YAML) and ``~key`` (delete) overrides."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if item.startswith("~"):
            dotted = item[1:]
            parent_key, _, leaf = dotted.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
            if not isinstance(parent, DictConfig) or leaf not in parent:
                raise ConfigError(
                    f"override {item!r}: key {dotted!r} is not in the recipe, nothing to delete"
                )
            parent.pop(leaf)
            continue
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} must be key=value (e.g. optim.lr.decoder=2e-5) or ~key to delete a key"
            )
        key = item.split("=", 1)[0]
        if not key or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"override {item!r}: {key!r} is not a dotted key")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as error:
            raise ConfigError(f"override {item!r} cannot be applied: {error}") from error
    return cfg


def load_recipe(path: str | Path, overrides: Sequence[str] = (), *, check_paths: bool = True) -> DictConfig:
    """Load, merge (defaults ← base chain ← recipe ← overrides), resolve and validate a recipe.

    Args:
        path: the recipe YAML file.
        overrides: ``key=value`` / ``~key`` strings, applied in order.
        check_paths: also require ``pretrained``/``init_from`` paths to be local directories.
    """
    path = Path(path)
    user = _load_with_bases(path)
    check_keys(OmegaConf.to_container(user), source=str(path))
    cfg = apply_overrides(OmegaConf.merge(OmegaConf.create(copy.deepcopy(DEFAULTS)), user), overrides)
    check_keys(OmegaConf.to_container(cfg), source=str(path))
    _check_present(OmegaConf.to_container(cfg), DEFAULTS, "", str(path))
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as error:
        raise ConfigError(f"recipe {str(path)!r}: cannot resolve an interpolation: {error}") from error
    validate_recipe(cfg, source=str(path), check_paths=check_paths)
    return cfg


def to_dict(cfg: DictConfig | Mapping) -> dict[str, Any]:
    """A plain, resolved ``dict`` copy of a recipe."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return copy.deepcopy(dict(cfg))


def format_recipe(cfg: DictConfig | Mapping) -> str:
    """The resolved recipe as YAML (what ``--print`` shows and what every run saves)."""
    return OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg)))


def save_recipe(cfg: DictConfig | Mapping, path: str | Path, command: str | None = None) -> Path:
    """Write the resolved recipe, headed by the command that launched the run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {command}\n" if command else ""
    path.write_text(header + format_recipe(cfg))
    return path


# -------------------------------------------------------------------------------------- validation
def _walk_unknown(user: Mapping, schema: Mapping, prefix: str, source: str) -> None:
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if dotted == "base":
            continue
        if key not in schema:
            known = ", ".join(sorted(schema)) or "(none)"
            where = f"under {prefix[:-1]!r}" if prefix else "at the top level"
            raise ConfigError(
                f"recipe {source!r}: unknown key {dotted!r}{_did_you_mean(str(key), schema)}. "
                f"Known keys {where}: {known}."
            )
        if dotted in OPEN_SECTIONS:
            continue
        if isinstance(schema[key], Mapping) and schema[key] and isinstance(value, Mapping):
            _walk_unknown(value, schema[key], dotted + ".", source)


def check_keys(user: Mapping, source: str) -> None:
    """Reject keys that :data:`DEFAULTS` does not know, with a did-you-mean."""
    _walk_unknown(user, DEFAULTS, "", source)


def _check_present(cfg: Mapping, schema: Mapping, prefix: str, source: str) -> None:
    """Every fixed key must stay present (``~key`` may only delete within open sections)."""
    for key, default in schema.items():
        dotted = f"{prefix}{key}"
        if key not in cfg:
            raise ConfigError(
                f"recipe {source!r}: key {dotted!r} is missing (deleted with ~{dotted}?); "
                f"set it instead, e.g. {dotted}={default!r}"
            )
        nested = isinstance(default, Mapping) and default and isinstance(cfg[key], Mapping)
        if nested and dotted not in OPEN_SECTIONS:
            _check_present(cfg[key], default, dotted + ".", source)


def _accepted_names(builder: Callable) -> list[str] | None:
    """Keyword names ``builder`` accepts, or None when it takes ``**kwargs``/has no signature."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [
        n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"
    ]


def check_arguments(builder: Callable, kwargs: Mapping[str, Any], where: str, source: str) -> None:
    """Bind ``kwargs`` to ``builder``'s signature without calling it: unknown names are errors.

    Missing required arguments are not checked here: the model fills some (widths, the
    tokenizer) when it builds the parts.
    """
    accepted = _accepted_names(builder)
    if accepted is None:
        return
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"recipe {source!r}: {where} got unknown argument {key!r}{_did_you_mean(key, accepted)}. "
                f"Accepted: {', '.join(accepted)}."
            )


def _check_component(cfg: DictConfig, part: str, registry_name: str, source: str) -> None:
    from tempo_kit import registry as registries
    from tempo_kit.registry import RegistryError

    spec = cfg.model.get(part)
    if spec is None:
        raise ConfigError(f"recipe {source!r}: model.{part} is missing; give at least {{name: ...}}")
    if isinstance(spec, str):
        return _check_registry_name(getattr(registries, registry_name), spec, f"model.{part}", source)
    if "name" not in spec:
        raise ConfigError(f"recipe {source!r}: model.{part} needs a 'name' (a registered {part})")
    registry = getattr(registries, registry_name)
    _import_components()
    try:
        builder = registry.get(str(spec.name))
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: model.{part}.name: {error}") from error
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    check_arguments(builder, kwargs, f"model.{part} ({spec.name!r})", source)


def _check_registry_name(registry, name: str, where: str, source: str) -> None:
    from tempo_kit.registry import RegistryError

    _import_components()
    try:
        registry.get(name)
    except RegistryError as error:
        raise ConfigError(f"recipe {source!r}: {where}: {error}") from error


def _import_components() -> None:
    """Import the kit's component modules so their registrations exist before lookups."""
    import importlib

    for module in (
        "tempo_kit.projectors",
        "tempo_kit.compressors",
        "tempo_kit.decoders",
        "tempo_kit.allocators",
    ):
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - a broken optional component module
            continue
    for module in ("tempo_kit.compressors.qwen3_vl", "tempo_kit.decoders.hf_causal_lm", "tempo_kit.model"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue


#: First path parts that mark a local folder, never a hub organisation.
LOCAL_ROOTS = ("checkpoints", "outputs", "data", "models", "runs")


def check_local_path(value: Any, key: str, source: str) -> None:
    """A checkpoint path must be a local folder; a hub name needs a download the user does."""
    if value is None:
        return
    path = Path(str(value)).expanduser()
    if path.is_dir():
        return
    text = str(value)
    first = text.split("/", 1)[0]
    looks_like_hub = (
        text.count("/") == 1
        and not text.startswith((".", "/", "~"))
        and first not in LOCAL_ROOTS
        and not Path(first).is_dir()
    )
    if looks_like_hub:
        local = f"checkpoints/{text.split('/')[-1]}"
        raise CheckpointError(
            f"recipe {source!r}: {key}={text!r} is not a local folder; it looks like a model-hub name. "
            f"tempo-kit never downloads weights: fetch them first, e.g. "
            f"`huggingface-cli download {text} --local-dir {local}`, then pass {key}={local}."
        )
    raise CheckpointError(
        f"recipe {source!r}: {key}={text!r} is not a local folder. Download the checkpoint into it first "
        "(e.g. `huggingface-cli download Qwen/Qwen3-4B --local-dir checkpoints/Qwen3-4B`; the stage recipes "
        "expect checkpoints/Qwen3-VL-2B-Instruct and checkpoints/Qwen3-4B), point the key at another folder, "
        "or build tiny test checkpoints with `tempo-kit make-tiny outputs/tiny`."
    )


def validate_recipe(cfg: DictConfig, source: str = "<recipe>", *, check_paths: bool = True) -> None:
    """Check a merged recipe: modes, LoRA settings, learning rates, components, data, strategy."""
    for part in cfg.trainable:
        mode = cfg.trainable[part]
        if mode not in MODES:
            raise ConfigError(
                f"recipe {source!r}: trainable.{part}={mode!r} must be one of {', '.join(MODES)}"
                f"{_did_you_mean(str(mode), MODES)}"
            )
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
    known_model_keys = model_keys()
    for key in cfg.model:
        if key not in known_model_keys:
            raise ConfigError(
                f"recipe {source!r}: unknown key 'model.{key}'{_did_you_mean(str(key), known_model_keys)}. "
                f"Known keys under 'model': {', '.join(known_model_keys)}."
            )
    for part, registry_name in (
        ("compressor", "COMPRESSORS"),
        ("projector", "PROJECTORS"),
        ("decoder", "DECODERS"),
        ("allocator", "ALLOCATORS"),
    ):
        if cfg.run.init_from is None or part in cfg.model:
            _check_component(cfg, part, registry_name, source)
    reduction = cfg.model.get("reduction")
    if reduction is not None:
        from tempo_kit.registry import REDUCTIONS

        name = reduction if isinstance(reduction, str) else reduction.get("name")
        _check_registry_name(REDUCTIONS, str(name), "model.reduction", source)
    _check_data(cfg, source)
    _check_trainer(cfg, source)
    if check_paths:
        init_from = cfg.run.init_from
        if init_from is not None and not Path(str(init_from)).expanduser().is_dir():
            raise CheckpointError(
                f"recipe {source!r}: run.init_from={str(init_from)!r} is not a local folder. It is the previous "
                "stage's export (<output_dir>/final of its fit run): run that stage first, point run.init_from at "
                "its final/ folder, or set run.init_from=null to start from the model: checkpoints."
            )
        if cfg.run.init_from is None:
            for part in ("compressor", "decoder"):
                spec = cfg.model.get(part)
                if isinstance(spec, DictConfig) and spec.get("pretrained") is not None:
                    check_local_path(spec.pretrained, f"model.{part}.pretrained", source)


def _check_data(cfg: DictConfig, source: str) -> None:
    try:
        from tempo_kit.data import TempoDataModule
    except ImportError:
        return
    managed = {"tokenizer", "batch_size", "seed"}
    kwargs = {k: v for k, v in cfg.data.items() if k not in managed}
    for key in managed & set(cfg.data):
        raise ConfigError(
            f"recipe {source!r}: data.{key} is set by the recipe itself "
            f"({'trainer.micro_batch_size' if key == 'batch_size' else 'run.seed' if key == 'seed' else 'the decoder'}); "
            f"remove data.{key}"
        )
    check_arguments(TempoDataModule, kwargs, "data (TempoDataModule)", source)


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
    if strategy.name not in STRATEGIES:
        raise ConfigError(
            f"recipe {source!r}: trainer.strategy.name={strategy.name!r} must be one of {', '.join(STRATEGIES)}"
            f"{_did_you_mean(str(strategy.name), STRATEGIES)}"
        )
    for part in trainer.gradient_checkpointing:
        if part not in ("compressor", "decoder"):
            raise ConfigError(
                f"recipe {source!r}: trainer.gradient_checkpointing.{part}: only compressor and decoder "
                "have checkpointable layers"
            )


# ------------------------------------------------------------------------------------ docs table
def _lr_text(cfg: DictConfig, parts: Sequence[str]) -> str:
    values = sorted({float(cfg.optim.lr[p]) for p in parts if cfg.trainable[p] != "frozen"})
    return " / ".join(f"{v:.0e}" for v in values) or "—"


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
