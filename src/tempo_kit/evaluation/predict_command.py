"""``tempo-kit predict``: open-ended answers, allocations and timings for every row of a file.

    tempo-kit predict --model DIR_OR_HUB_ID --annotations rows.jsonl --output predictions/
    torchrun --nproc-per-node 8 -m tempo_kit.cli predict ...    # one shard per process

Writes ``<output>/predictions.jsonl`` (one line per row; see :mod:`tempo_kit.evaluation.predict`)
and ``<output>/summary.json``. A rerun of the same command resumes; ``--overwrite`` starts over.
"""

from __future__ import annotations

import argparse
import json


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="kit model folder or hub id (org/name[@revision])")
    parser.add_argument("--annotations", required=True, help="JSON / JSONL / Parquet rows with a video and a question")
    parser.add_argument("--output", required=True, help="folder for predictions.jsonl and summary.json")
    parser.add_argument("--media-root", default=None, help="folder video paths are relative to (default: the file's)")
    parser.add_argument("--budget", type=_positive, default=None, help="visual-token budget per video (model default)")
    parser.add_argument("--allocator", default=None, help="allocator name (ata, uniform, ...; model default)")
    parser.add_argument("--max-new-tokens", type=_positive, default=64, help="answer length cap (default 64)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default=None, help="load the SVLM and the LLM in this dtype, e.g. bfloat16")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tempo_kit.atomic import check_output_path, write_json
    from tempo_kit.errors import ConfigError, OutputError
    from tempo_kit.evaluation.command import _barrier, current_shard
    from tempo_kit.evaluation.predict import SUMMARY_FILE, load_predict_rows, predict, summarize_predictions

    output = check_output_path(args.output, what="--output")
    if output.exists() and not output.is_dir():
        raise OutputError(f"--output {output} is a file; pass a folder for predictions.jsonl and summary.json")
    rows, skipped = load_predict_rows(args.annotations, args.media_root)
    for line in skipped:
        print(f"skipped {line}")
    if not rows:
        raise ConfigError(f"{args.annotations}: no usable row ({len(skipped)} skipped, reasons above)")
    import torch

    from tempo_kit.inference.api import TempoPipeline

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: no CUDA device is visible; use --device cpu")
    pipe = TempoPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    options = {"max_new_tokens": args.max_new_tokens}
    options.update({k: v for k, v in (("budget", args.budget), ("allocator", args.allocator)) if v is not None})
    setting = {"model": str(args.model), **options}
    shard = current_shard()
    done = predict(
        lambda row: pipe.answer(row.video, row.query, **options),
        rows,
        output,
        setting,
        shard=shard,
        overwrite=args.overwrite,
        progress=not args.no_progress and shard[0] == 0,
    )
    _barrier(shard)
    if shard[0] != 0:
        return 0
    summary = summarize_predictions(output, skipped)
    write_json(Path(output) / SUMMARY_FILE, summary)
    shown = {k: v for k, v in summary.items() if k != "skipped_rows"}
    print(json.dumps({**shown, "answered_now": done["answered"], "resumed": done["resumed"]}, indent=2))
    return 0
