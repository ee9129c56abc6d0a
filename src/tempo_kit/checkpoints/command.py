"""``tempo-kit convert``: released Tempo checkpoints ↔ the kit's model folders.

    tempo-kit convert to-kit checkpoints/Tempo-6B checkpoints/tempo-6b-kit \\
        --svlm checkpoints/Qwen3-VL-2B-Instruct
    tempo-kit convert to-released runs/stage3/final checkpoints/tempo-stage3-released

``to-kit`` needs the base Qwen3-VL-2B-Instruct folder beside the released weights: its config,
processor and tokenizer describe the SVLM, and its LM head gives the relevance direction. A
report lists the tensors mapped per group (none may be left over) and the shape checks.
"""

from __future__ import annotations

import argparse
import json

from tempo_kit.hub import SVLM_HUB_NAME as DEFAULT_SVLM_NAME
from tempo_kit.hub import missing_folder_hint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("direction", choices=("to-kit", "to-released"), help="which way to convert")
    parser.add_argument(
        "source", help="released checkpoint folder (to-kit) or kit model folder (to-released)"
    )
    parser.add_argument("output", help="folder to write")
    parser.add_argument(
        "--svlm",
        default=None,
        help="to-kit: base Qwen3-VL-2B-Instruct folder (SVLM config, processor, relevance)",
    )
    parser.add_argument(
        "--llm",
        default=None,
        help="to-kit: base LLM folder, for a stage checkpoint that holds no LLM weights",
    )
    parser.add_argument(
        "--svlm-name",
        default=None,
        help=f"to-released: value of mm_vision_tower_aux_list (default: recorded at conversion, or {DEFAULT_SVLM_NAME})",
    )
    parser.add_argument(
        "--dtype", default=None, help="to-kit: SVLM dtype stored in the kit config, e.g. bfloat16"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def check_local_folder(what: str, value: str | None) -> None:
    """A checkpoint argument must be a local folder; a hub id gets the command that fetches it."""
    from pathlib import Path

    from tempo_kit.errors import CheckpointError

    if value is None or Path(value).is_dir():
        return
    raise CheckpointError(f"{what} {value}: no such folder; {missing_folder_hint(value)}")


def check_output_folder(source: str, output: str) -> None:
    """The output must be a new folder, not the source or a folder inside or around it."""
    from pathlib import Path

    from tempo_kit.atomic import check_output_path
    from tempo_kit.errors import OutputError

    out = check_output_path(output, what="output", kind="folder")
    if out.exists():
        raise OutputError(
            f"output {out} already exists; convert into a new folder (remove the old one first to replace it)"
        )
    src, dst = Path(source).resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise OutputError(f"output {out} overlaps the source {source}; convert into a folder outside it")


def run(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    if not progress:
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    for what, value in (("source", args.source), ("--svlm", args.svlm), ("--llm", args.llm)):
        check_local_folder(what, value)
    check_output_folder(args.source, args.output)
    from pathlib import Path

    from tempo_kit.atomic import remove_partials
    from tempo_kit.run_lock import run_lock

    out = Path(args.output).expanduser()
    with run_lock(out.parent, "convert", lock_name=f".{out.name}.tempo-kit.lock"):
        remove_partials(out.parent, out.name, recursive=False)  # left by a killed conversion
        report = _convert(args, progress)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def _convert(args: argparse.Namespace, progress: bool):
    from tempo_kit.checkpoints.convert import convert_kit_to_released, convert_released_to_kit
    from tempo_kit.errors import ConfigError

    if args.direction == "to-kit":
        if args.svlm is None:
            raise ConfigError(
                "to-kit needs --svlm: the base Qwen3-VL-2B-Instruct folder the released weights were trained "
                "from (download it first; the relevance direction is rebuilt from its LM head)"
            )
        report = convert_released_to_kit(
            args.source,
            args.svlm,
            args.output,
            llm_dir=args.llm,
            compressor_kwargs={"dtype": args.dtype} if args.dtype else None,
            progress=progress,
        )
    else:
        report = convert_kit_to_released(
            args.source, args.output, svlm_name=args.svlm_name, progress=progress
        )
    return report
