"""``tempo-kit make-tiny OUT_DIR``: write the tiny checkpoints used by tests and the CPU demo."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="folder to write svlm/ and llm/ into (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from tempo_kit.tiny import make_tiny

    paths = make_tiny(args.out_dir, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
