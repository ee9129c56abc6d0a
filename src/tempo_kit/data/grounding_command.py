"""``tempo-kit convert-grounding``: a temporal-grounding dataset → annotation rows with ``relevant_spans``.

    tempo-kit convert-grounding --format charades-sta charades_sta_train.txt data/router/train.jsonl \\
        --durations Charades_v1_train.csv
    tempo-kit convert-grounding --format qvhighlights highlight_train_release.jsonl data/router/train.jsonl

The rows feed the router stage (``recipes/router.yaml``) and ``tempo-kit route``; see
:mod:`tempo_kit.data.grounding`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.data.grounding import DEFAULT_VIDEO_PATTERN, FORMATS

    parser.add_argument("source", help="the dataset's annotation file")
    parser.add_argument("output", help="JSONL file to write")
    parser.add_argument("--format", required=True, help=f"layout of the source: {', '.join(FORMATS)}")
    parser.add_argument(
        "--video-pattern",
        default=DEFAULT_VIDEO_PATTERN,
        help=f"video path of a row from the dataset's video id (default {DEFAULT_VIDEO_PATTERN!r})",
    )
    parser.add_argument("--durations", default=None, help="CSV with id,length columns (Charades metadata)")


def run(args: argparse.Namespace) -> int:
    from tempo_kit.data.grounding import convert_grounding

    result = convert_grounding(
        args.source, args.output, args.format, video_pattern=args.video_pattern, durations=args.durations
    )
    print(f"{args.output}: {result.summary()}")
    return 0
