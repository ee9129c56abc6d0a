"""``tempo-kit make-synthetic OUT_DIR``: write needle-in-a-haystack videos and their questions.

Example::

    tempo-kit make-synthetic data/needle --train 64 --val 16 --duration 40 --seed 0

writes ``OUT_DIR/videos/*.mp4``, ``OUT_DIR/train.jsonl`` and ``OUT_DIR/val.jsonl``.
"""

from __future__ import annotations

import argparse

from tempo_kit.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.data.synthetic import CATEGORIES

    parser.add_argument("out_dir", help="folder for videos/ and the annotation files")
    parser.add_argument("--train", type=int, default=32, help="videos in the train split (default 32)")
    parser.add_argument("--val", type=int, default=8, help="videos in the val split (default 8)")
    parser.add_argument("--test", type=int, default=0, help="videos in the test split (default 0)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per video (default 40)")
    parser.add_argument("--fps", type=float, default=8.0, help="source frame rate (default 8)")
    parser.add_argument("--height", type=int, default=96, help="frame height (default 96)")
    parser.add_argument("--width", type=int, default=128, help="frame width (default 128)")
    parser.add_argument("--needle-duration", type=float, default=3.0, help="event length, s (default 3)")
    parser.add_argument(
        "--categories",
        nargs="+",
        default=list(CATEGORIES),
        help=f"question kinds (default: {' '.join(CATEGORIES)})",
    )
    parser.add_argument(
        "--question-types", nargs="+", default=["mc", "open"], help="mc and/or open (default: both)"
    )
    parser.add_argument(
        "--window", type=int, default=4, help="frames per segment for needle_segment (default 4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from tempo_kit.data.synthetic import make_needle_dataset

    if args.height < 16 or args.width < 16 or args.height % 2 or args.width % 2:
        raise ConfigError(f"--height/--width must be even and ≥ 16 for H.264, got {args.height}x{args.width}")
    splits = {"train": args.train, "val": args.val, "test": args.test}
    for split, count in splits.items():
        if count < 0:
            raise ConfigError(f"--{split} must be ≥ 0, got {count}")
        if count == 0:
            continue
        try:
            path = make_needle_dataset(
                args.out_dir,
                count,
                split=split,
                duration=args.duration,
                fps=args.fps,
                size=(args.height, args.width),
                needle_duration=args.needle_duration,
                categories=args.categories,
                question_types=args.question_types,
                window=args.window,
                seed=args.seed,
            )
        except ValueError as error:
            raise ConfigError(str(error)) from error
        print(f"{split}: {count} videos → {path}")
    return 0
