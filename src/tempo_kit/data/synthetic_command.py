"""``tempo-kit make-synthetic OUT_DIR``: write needle-in-a-haystack videos and their questions.

Example::

    tempo-kit make-synthetic data/needle --train 64 --val 16 --duration 40 --seed 0

writes ``OUT_DIR/videos/*.mp4``, ``OUT_DIR/train.jsonl`` and ``OUT_DIR/val.jsonl``. With
``--task events`` each video holds several striped shapes and the questions name the one they ask
about (:mod:`tempo_kit.data.synthetic_events`)::

    tempo-kit make-synthetic data/events --task events --train 64 --val 16 --events 2 4
"""

from __future__ import annotations

import argparse
import math

from tempo_kit.errors import ConfigError

TASKS = ("needle", "events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.data.synthetic import CATEGORIES
    from tempo_kit.data.synthetic_events import QUESTION_KINDS

    parser.add_argument("out_dir", help="folder for videos/ and the annotation files")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="needle",
        help="needle: one event per video (default); events: several, the question names one",
    )
    parser.add_argument("--train", type=int, default=32, help="videos in the train split (default 32)")
    parser.add_argument("--val", type=int, default=8, help="videos in the val split (default 8)")
    parser.add_argument("--test", type=int, default=0, help="videos in the test split (default 0)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per video (default 40)")
    parser.add_argument("--fps", type=float, default=8.0, help="source frame rate (default 8)")
    parser.add_argument("--height", type=int, default=96, help="frame height (default 96)")
    parser.add_argument("--width", type=int, default=128, help="frame width (default 128)")
    parser.add_argument(
        "--needle-duration", type=float, default=None, help="event length, s (default 3; events task 2)"
    )
    parser.add_argument(
        "--categories",
        nargs="+",
        default=None,
        help=f"question kinds (default: needle {' '.join(CATEGORIES)}; events {' '.join(QUESTION_KINDS)})",
    )
    parser.add_argument(
        "--events", nargs=2, type=int, default=[2, 4], metavar=("MIN", "MAX"),
        help="events task: events per video (default 2 4)",
    )  # fmt: skip
    parser.add_argument("--stripes", type=int, default=2, help="events task: colours per shape (default 2)")
    parser.add_argument(
        "--question-types", nargs="+", default=["mc", "open"], help="mc and/or open (default: both)"
    )
    parser.add_argument(
        "--window", type=int, default=4, help="frames per segment for needle_segment (default 4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _check_flags(args: argparse.Namespace) -> None:
    """One-line errors naming the flag, before any video is written."""
    for flag, example in {"duration": 40, "fps": 2, "needle_duration": 3, "window": 4}.items():
        value = getattr(args, flag)
        if value is not None and not (math.isfinite(value) and value > 0):
            name = "--" + flag.replace("_", "-")
            raise ConfigError(f"{name} must be a number > 0, got {value}; e.g. {name} {example}")
    if args.height < 16 or args.width < 16 or args.height % 2 or args.width % 2:
        raise ConfigError(f"--height/--width must be even and ≥ 16 for H.264, got {args.height}x{args.width}")
    for split in ("train", "val", "test"):
        if getattr(args, split) < 0:
            raise ConfigError(f"--{split} must be ≥ 0, got {getattr(args, split)}")


def _writer(args: argparse.Namespace):
    """The dataset function for ``--task`` and its task-specific keyword arguments."""
    if args.task == "events":
        from tempo_kit.data.synthetic_events import QUESTION_KINDS, make_events_dataset

        return make_events_dataset, {
            "event_duration": 2.0 if args.needle_duration is None else args.needle_duration,
            "events": tuple(args.events),
            "stripes": args.stripes,
            "question_kinds": args.categories or list(QUESTION_KINDS),
        }
    from tempo_kit.data.synthetic import CATEGORIES, make_needle_dataset

    return make_needle_dataset, {
        "needle_duration": 3.0 if args.needle_duration is None else args.needle_duration,
        "categories": args.categories or list(CATEGORIES),
        "question_types": args.question_types,
    }


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    write, task_kwargs = _writer(args)
    splits = {"train": args.train, "val": args.val, "test": args.test}
    for split, count in splits.items():
        if count == 0:
            continue
        try:
            path = write(
                args.out_dir,
                count,
                split=split,
                duration=args.duration,
                fps=args.fps,
                size=(args.height, args.width),
                window=args.window,
                seed=args.seed,
                **task_kwargs,
            )
        except ValueError as error:
            raise ConfigError(str(error)) from error
        print(f"{split}: {count} videos → {path}")
    return 0
