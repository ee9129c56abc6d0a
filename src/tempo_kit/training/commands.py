"""The ``fit``, ``validate`` and ``test`` verbs: ``tempo-kit fit --recipe R [key=value ...]``.

One recipe is one run: its resolved form is saved as ``<output_dir>/recipe.yaml`` (headed by the
command that launched it), metrics go to the loggers of ``trainer.loggers`` (by default
``<output_dir>/tensorboard`` and ``<output_dir>/metrics.jsonl``), skipped samples to
``<output_dir>/skips.jsonl``, Lightning checkpoints to ``<output_dir>/checkpoints`` (``last.ckpt``
is what ``--resume`` picks up) and, at the end of fit, the merged model in the kit's format to
``<output_dir>/final`` — the folder the next stage's ``run.init_from`` names — with LoRA runs'
adapters in peft's format beside it (``<output_dir>/adapters/<part>``). ``fit`` ends by printing
where each of these is.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.training.export import export_final
from tempo_kit.training.run_folder import (
    CHECKPOINT_DIR,
    FINAL_DIR,
    LAST_CHECKPOINT,
    LOGGER_FILES,
    RECIPE_FILE,
    SKIPS_FILE,
)
from tempo_kit.training.trainer import build_trainer


def add_arguments(parser: argparse.ArgumentParser, verb: str = "fit") -> None:
    parser.add_argument(
        "--recipe",
        "--config",
        "-c",
        dest="recipe",
        required=True,
        help="recipe YAML file, or the name of a shipped recipe (`tempo-kit recipes list`), e.g. stage2 "
        "(--config / -c: LightningCLI's spelling)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="recipe overrides in dotted form, e.g. optim.lr.decoder=2e-5 trainer.devices=2; ~key deletes a key",
    )
    parser.add_argument(
        "--print",
        "--print_config",
        dest="print_recipe",
        action="store_true",
        help="print the resolved recipe and exit (--print_config: LightningCLI's spelling)",
    )
    parser.add_argument(
        "--multirun",
        "-m",
        action="store_true",
        help="one run per combination of comma-separated override values (key=a,b), each in "
        "<run.output_dir>/<n>; Hydra's multirun without Hydra",
    )
    # each verb lists its own switch; the other verb's is still parsed (hidden) so that using it
    # gets an error naming the right command instead of argparse's "unrecognized arguments"
    fit = verb == "fit"
    parser.add_argument(
        "--resume",
        nargs="?",
        const="last",
        default=None,
        metavar="PATH|last",
        help="continue from a Lightning checkpoint (default: <output_dir>/checkpoints/last.ckpt)"
        if fit
        else argparse.SUPPRESS,
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="fit: start over in a run.output_dir that holds an earlier run (its checkpoints, final/ and logs are removed)",
    )
    parser.add_argument(
        "--ckpt",
        default=None,
        metavar="PATH|last",
        help=argparse.SUPPRESS
        if fit
        else "evaluate the weights of a Lightning checkpoint (a .ckpt file, or an FSDP run's sharded checkpoint "
        "folder, on any strategy) instead of the recipe's model",
    )


def normalize_argv(argv: list[str]) -> list[str]:
    """LightningCLI's override spellings as the kit's: ``--trainer.max_epochs=3`` and
    ``--trainer.max_epochs 3`` become ``trainer.max_epochs=3`` (a dotted option is a recipe key)."""
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        name = token[2:].split("=", 1)[0]
        if not token.startswith("--") or "." not in name:
            out.append(token)
        elif "=" in token:
            out.append(token[2:])
        else:
            value = next(tokens, None)
            if value is None:
                raise ConfigError(f"{token} needs a value: {token} VALUE, {token}=VALUE or {name}=VALUE")
            out.append(f"{name}={value}")
    return out


def resolve_checkpoint(value: str | None, output_dir: str | Path, flag: str) -> str | None:
    """``last`` → ``<output_dir>/checkpoints/last.ckpt``; a path must exist locally."""
    if value is None:
        return None
    path = (
        Path(output_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT if value == "last" else Path(value).expanduser()
    )
    if not path.exists():
        hint = (
            f"no run has saved a checkpoint in {path.parent} yet; start without {flag}, or pass {flag} PATH"
            if value == "last"
            else "pass a local .ckpt file (or folder, for FSDP sharded checkpoints)"
        )
        raise CheckpointError(f"{flag} {value}: {path} does not exist; {hint}")
    from tempo_kit.training.resume import readable_checkpoint

    return str(readable_checkpoint(path, flag))


#: What an earlier fit leaves in its run folder; ``--overwrite`` removes them.
RUN_PIECES = (
    CHECKPOINT_DIR, FINAL_DIR, "metrics.jsonl", "tensorboard", "adapters", "adapters.safetensors", *LOGGER_FILES
)  # fmt: skip


def check_fresh_output(output_dir: Path, resume: str | None, overwrite: bool) -> None:
    """A fit without ``--resume`` must not mix with an earlier run in the same folder.

    With ``--overwrite`` the earlier run's pieces are removed first; with ``--resume`` the
    folder is the one being continued.
    """
    import shutil

    from tempo_kit.run_lock import is_launch_process

    if resume is not None or not is_launch_process():
        return
    used = [
        name
        for name in RUN_PIECES
        if (output_dir / name).is_file() or ((output_dir / name).is_dir() and any((output_dir / name).iterdir()))
    ]
    if not used:
        return
    if not overwrite:
        raise ConfigError(
            f"run.output_dir {output_dir} already holds a run ({', '.join(used)}); continue it with --resume, "
            "start over with --overwrite, or choose another run.output_dir (or run.name)"
        )
    for name in used:
        path = output_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def tokenizer_source(recipe: Mapping[str, Any]) -> str:
    """Where the decoder's tokenizer lives: the exported model's ``decoder/`` or ``model.decoder.pretrained``.

    The data module needs it before Lightning builds the model in ``configure_model()``.
    """
    init_from = recipe["run"].get("init_from")
    if init_from:
        return str(Path(str(init_from)).expanduser() / "decoder")
    decoder = recipe["model"].get("decoder")
    pretrained = decoder.get("pretrained") if isinstance(decoder, Mapping) else None
    if not pretrained:
        raise ConfigError(
            "the data needs the decoder's tokenizer: set model.decoder.pretrained to the LLM checkpoint "
            "folder that holds it, or run.init_from to an exported model"
        )
    return str(pretrained)


def build_datamodule(recipe: Mapping[str, Any], verb: str = "fit"):
    """The recipe's ``TempoDataModule`` (micro-batch size, seed, tokenizer and skips file come from the recipe)."""
    from tempo_kit.data import TempoDataModule
    from tempo_kit.training.features import check_feature_recipe, trains_from_features

    check_feature_recipe(recipe)
    skips = SKIPS_FILE if verb == "fit" else f"skips.{verb}.jsonl"
    stored = {"features_model": recipe["run"].get("init_from")} if trains_from_features(recipe) else {}
    return TempoDataModule(
        tokenizer=tokenizer_source(recipe),
        batch_size=recipe["trainer"]["micro_batch_size"],
        seed=recipe["run"]["seed"],
        skips_file=Path(recipe["run"]["output_dir"]) / skips,
        **dict(recipe["data"]),
        **stored,
    )


def fit_summary(trainer, output_dir: Path, final: Path | None) -> str:
    """Where a finished fit left the model, the checkpoints, each logger's files and the skips."""
    from tempo_kit.training.loggers import describe, logger_name
    from tempo_kit.training.progress import run_summary

    logs = []
    for logger in trainer.loggers:
        logs.append((logger_name(logger), describe(logger)))
    skips = output_dir / SKIPS_FILE
    if skips.is_file():
        logs.append(("skipped samples", str(skips)))
    return run_summary(output_dir, final, output_dir / CHECKPOINT_DIR, logs)


def _command_line(args: argparse.Namespace) -> str:
    parts = ["tempo-kit", args.command, "--recipe", args.recipe, *args.overrides]
    if getattr(args, "resume", None):
        parts += ["--resume", args.resume]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from tempo_kit.recipes import format_recipe, load_recipe

    if getattr(args, "multirun", False):
        from tempo_kit.training.multirun import run_multirun

        return run_multirun(args, run)

    for flag in ("resume", "ckpt"):  # `--resume key=value`: argparse took an override for the path
        value = getattr(args, flag, None)
        if value and "=" in value and not Path(value).exists():
            args.overrides.append(value)
            setattr(args, flag, "last")
    recipe_cfg = load_recipe(args.recipe, args.overrides, check_paths=not args.print_recipe)
    if args.print_recipe:
        sys.stdout.write(format_recipe(recipe_cfg))
        return 0
    from tempo_kit.recipes import to_dict

    recipe = to_dict(recipe_cfg)
    if args.command != "fit" and args.resume:
        raise ConfigError(
            f"--resume is for fit; to evaluate a checkpoint use `tempo-kit {args.command} --ckpt PATH`"
        )
    if args.command == "fit" and args.ckpt:
        raise ConfigError(
            "--ckpt is for validate/test; to continue training use `tempo-kit fit --resume PATH`"
        )
    from tempo_kit.quiet import hide_library_progress, quiet_library_messages
    from tempo_kit.training.progress import use_progress_bar

    if args.command != "fit" and args.overwrite:
        raise ConfigError("--overwrite is for fit (it starts a run over in its run.output_dir)")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in run.output_dir and --overwrite deletes it: pass one")
    from tempo_kit.atomic import check_output_path, remove_partials
    from tempo_kit.run_lock import is_launch_process, run_lock

    output_dir = check_output_path(recipe["run"]["output_dir"], what="run.output_dir", kind="folder")
    lock = run_lock(output_dir, args.command)  # validate/test too: never a row in a running fit's files
    if not use_progress_bar(recipe["trainer"]["enable_progress_bar"]):
        hide_library_progress()  # no loading bars from transformers where Lightning's bar is off
    with lock, quiet_library_messages():
        if args.command == "fit":
            check_fresh_output(output_dir, args.resume, args.overwrite)
            if is_launch_process():  # the lock says no other fit writes here
                remove_partials(output_dir)
        run_recipe(recipe, args.command, resume=args.resume, ckpt=args.ckpt, command_line=_command_line(args))
    return 0


@contextlib.contextmanager
def lightning_config_errors(verb: str, checkpoint: str | None) -> Iterator[None]:
    """Lightning's ``MisconfigurationException`` is about the user's settings: report it as a ConfigError."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        yield
    except MisconfigurationException as error:
        message = " ".join(str(error).split())
        if checkpoint and "restored a checkpoint" in message:
            fix = (
                f"the checkpoint {checkpoint} is already past that point: raise trainer.max_epochs / "
                "trainer.max_steps, or start over without --resume (another run.output_dir)"
            )
        else:
            fix = f"change the recipe's trainer settings (`tempo-kit {verb} --recipe R --print` shows them)"
        raise ConfigError(f"{message} — {fix}") from None


def set_cpu_threads(threads: int | None) -> None:
    """Pin torch's intra-op thread count (``trainer.cpu_threads``); ``None`` keeps torch's default."""
    if threads is None:
        return
    import torch

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"trainer.cpu_threads must be a positive integer or null, got {threads!r}")
    torch.set_num_threads(threads)


def format_metric(key: str, value: float | int) -> str:
    """``val/loss: 1.2500``; a count stays a whole number (``val/open_scored: 64``)."""
    return f"{key}: {value}" if isinstance(value, int) else f"{key}: {value:.4f}"


def run_recipe(
    recipe: Mapping[str, Any],
    verb: str = "fit",
    resume: str | None = None,
    ckpt: str | None = None,
    command_line: str | None = None,
    callbacks: Sequence = (),
) -> dict[str, float]:
    """Run ``verb`` (fit / validate / test) for a resolved recipe; returns the last eval metrics."""
    from lightning.pytorch import seed_everything

    from tempo_kit.recipes import save_recipe
    from tempo_kit.training.module import TempoModule

    output_dir = Path(recipe["run"]["output_dir"])
    resume_path = resolve_checkpoint(resume, output_dir, "--resume")
    ckpt_path = resolve_checkpoint(ckpt, output_dir, "--ckpt")
    seed_everything(int(recipe["run"]["seed"]), workers=True, verbose=False)
    set_cpu_threads(recipe["trainer"].get("cpu_threads"))
    module = TempoModule(recipe)
    trainer = build_trainer(recipe, verb, module, callbacks)
    from tempo_kit.training.strategies import is_fsdp

    if resume_path is not None:
        from tempo_kit.training.sharded_folder import check_resume_strategy

        check_resume_strategy(resume_path, is_fsdp(trainer.strategy))
    if is_fsdp(trainer.strategy):
        trainer.strategy.check_before_launch(module)
    if trainer.is_global_zero:
        name = RECIPE_FILE if verb == "fit" else f"recipe.{verb}.yaml"
        save_recipe(recipe, output_dir / name, command=command_line)
    datamodule = build_datamodule(recipe, verb)
    with lightning_config_errors(verb, resume_path or ckpt_path):
        if verb == "fit":
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_path)
            if trainer.state.status == "finished":  # last.ckpt is the final step, not the last periodic one
                trainer.save_checkpoint(output_dir / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=False)
            final = None
            if recipe["run"]["export_final"] and not trainer.fast_dev_run:
                final = export_final(trainer, module, output_dir / FINAL_DIR)
            if trainer.is_global_zero:
                print(fit_summary(trainer, output_dir, final), flush=True)
        elif verb == "validate":
            trainer.validate(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        elif verb == "test":
            trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        else:
            raise ConfigError(f"unknown verb {verb!r}; use fit, validate or test")
    metrics = dict(module.last_eval_metrics)
    if trainer.is_global_zero:
        for key, value in metrics.items():
            print(format_metric(key, value))
    return metrics
