"""The ``tempo-kit`` command line.

Each verb lives in its own module that exposes ``add_arguments(parser)`` and ``run(args) -> int``
(``args.command`` holds the verb, so one module can serve several);
this file only maps verbs to modules and imports a verb's module when it is used, so ``tempo-kit
--help`` stays fast and a verb's heavy imports (torch, transformers) load only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from tempo_kit.errors import TempoKitError

#: verb → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("tempo_kit.training.commands", "train with a recipe (Lightning's fit)"),
    "validate": ("tempo_kit.training.commands", "run the validation loop of a recipe"),
    "test": ("tempo_kit.training.commands", "run the test loop of a recipe"),
    "infer": ("tempo_kit.inference.command", "answer a question about one video"),
    "chat": ("tempo_kit.inference.chat", "a conversation about one video (follow-ups reuse the SVLM prefix cache)"),
    "demo": ("tempo_kit.inference.demo", "a Gradio web app to ask videos questions (needs the demo extra)"),
    "serve": ("tempo_kit.serving.command", "an OpenAI-compatible server for video questions (needs the serve extra)"),
    "eval": ("tempo_kit.evaluation.command", "multiple-choice benchmark over an annotation file"),
    "predict": ("tempo_kit.evaluation.predict_command", "open-ended answers, allocations and timings for every row of a file"),
    "convert-grounding": (
        "tempo_kit.data.grounding_command",
        "temporal-grounding rows (Charades-STA, QVHighlights) → annotation rows with relevant_spans",
    ),
    "route": ("tempo_kit.evaluation.route_command", "relevance vs labelled spans: AUROC, tokens per budget, plots"),
    "convert": ("tempo_kit.checkpoints.command", "convert between the released Tempo layout and the kit's"),
    "push": ("tempo_kit.push", "upload a saved model folder, with its model card, to the hub"),
    "recipes": ("tempo_kit.recipes.command", "list, show or copy the shipped recipes"),
    "components": ("tempo_kit.components_command", "list the registered components and where each comes from"),
    "make-tiny": ("tempo_kit.tiny.command", "write tiny SVLM / LLM checkpoints (any supported pair) for tests and demos"),
    "prepare": (
        "tempo_kit.data.prepare_command",
        "annotation files → shard folders to stream from (data.shards), in parallel, resumable",
    ),
    "make-synthetic": ("tempo_kit.data.synthetic_command", "write needle-in-a-haystack videos + questions"),
}

#: exit status of a command stopped with Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130

#: what a rerun does after Ctrl-C, for the verbs that can pick up where they stopped
INTERRUPT_HINTS: dict[str, str] = {
    "eval": "Finished questions are saved; rerun the same command to resume.",
}


def user_message(error: BaseException) -> str:
    """The error's own message, without the worker traceback a DataLoader worker wraps it in.

    torch re-raises an error from a worker process as ``Caught X in DataLoader worker process N.
    Original Traceback ...`` whose last line is ``module.X: message``: keep only that message.
    """
    text = str(error)
    if "\nOriginal Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    prefix = f"{type(error).__module__}.{type(error).__qualname__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last


def version() -> str:
    """The installed distribution's version (the source tree's when run from a checkout)."""
    from importlib import metadata

    try:
        return metadata.version("tempo-kit")
    except metadata.PackageNotFoundError:
        from tempo_kit import __version__

        return __version__


def parse_verb(verb: str, argv: Sequence[str]) -> tuple[Any, argparse.Namespace]:
    """The verb's module and its parsed arguments, the same way for every verb: options and
    positionals in any order (``fit --recipe R a=1 --resume last b=2``, as Lightning's and
    torchtune's command lines take them). A module may rewrite its argv first
    (``normalize_argv``, e.g. LightningCLI's spellings for ``fit``)."""
    module_name, help_text = COMMANDS[verb]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"tempo-kit {verb}", description=help_text)
    if "verb" in inspect.signature(module.add_arguments).parameters:  # one module, several verbs
        module.add_arguments(parser, verb=verb)
    else:
        module.add_arguments(parser)
    argv = list(argv)
    if callable(getattr(module, "normalize_argv", None)):
        argv = module.normalize_argv(argv)
    # argparse's intermixed parsing cannot take sub-commands (`recipes list`): those parse as usual
    has_subcommands = any(isinstance(action, argparse._SubParsersAction) for action in parser._actions)
    args = parser.parse_args(argv) if has_subcommands else parser.parse_intermixed_args(argv)
    args.command = verb
    return module, args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        verb = argv[0]
        try:
            module, args = parse_verb(verb, argv[1:])
            return int(module.run(args) or 0)
        except TempoKitError as error:
            print(f"tempo-kit {verb}: error: {user_message(error)}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader left (`tempo-kit components | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
            return 0
        except Exception as error:  # a full or read-only disk met by a library's own write
            from tempo_kit.atomic import disk_error

            translated = disk_error(error, action="use")
            if translated is None:
                raise
            print(f"tempo-kit {verb}: error: {translated}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ctrl-C is a user's choice, not a crash: no traceback
            print(
                f"\ntempo-kit {verb}: interrupted. {INTERRUPT_HINTS.get(verb, '')}".rstrip(), file=sys.stderr
            )
            return INTERRUPTED
    parser = argparse.ArgumentParser(
        prog="tempo-kit",
        description="Tempo: query-aware compression of long videos with small VLMs.",
    )
    parser.add_argument("--version", action="version", version=f"tempo-kit {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, (_, help_text) in COMMANDS.items():
        sub.add_parser(verb, help=help_text)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0  # pragma: no cover - every verb is dispatched above


if __name__ == "__main__":
    sys.exit(main())
