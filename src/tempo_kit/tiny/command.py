"""``tempo-kit make-tiny OUT_DIR [--svlm FAMILY] [--llm FAMILY]``: tiny checkpoints for tests and the CPU demo."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.tiny import DEFAULT_LLM, DEFAULT_SVLM
    from tempo_kit.tiny.llm_families import LLM_WRITERS
    from tempo_kit.tiny.svlm_families import SVLM_WRITERS

    parser.add_argument("out_dir", help="folder to write svlm/ and llm/ into (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    parser.add_argument(
        "--svlm", default=DEFAULT_SVLM, metavar="FAMILY",
        help=f"compressor family of svlm/: {', '.join(SVLM_WRITERS)} (default {DEFAULT_SVLM})",
    )
    parser.add_argument(
        "--llm", default=DEFAULT_LLM, metavar="FAMILY",
        help=f"decoder family of llm/: {', '.join(LLM_WRITERS)} (default {DEFAULT_LLM})",
    )


def run(args: argparse.Namespace) -> int:
    from tempo_kit.tiny import make_tiny

    if not sys.stdout.isatty():  # a log file gets the paths, not transformers' progress bars
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    paths = make_tiny(args.out_dir, seed=args.seed, svlm=args.svlm, llm=args.llm)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
