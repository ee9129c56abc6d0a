"""``tempo-kit route``: how well the SVLM's relevance finds the labelled segments, and where the budget goes.

    tempo-kit route --model DIR --annotations rows.jsonl --output runs/route --budget 64,128

Every row with ``relevant_spans`` is scored (rows without are skipped and counted). Writes
``<output>/routing.json`` (per video and overall: AUROC, average precision, and per budget the
share of relevant segments keeping ≥ ``--keep-tokens`` tokens, needle-token recall, tokens on
relevant vs irrelevant segments), ``<output>/roc.png`` and ``<output>/allocation/<id>.png`` (the
first ``--plots`` videos at the largest budget, spans shaded). See
:mod:`tempo_kit.evaluation.routing`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tempo_kit.atomic import write_json
from tempo_kit.errors import ConfigError
from tempo_kit.inference.command import add_model_arguments, check_budget, check_model_arguments, sampling_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("rows")
    data.add_argument("--annotations", required=True, help="annotation file whose rows carry relevant_spans")
    data.add_argument(
        "--media-root", default=None, help="folder video paths are relative to (default: the file's)"
    )
    data.add_argument("--limit", type=int, default=None, help="first N rows only")
    add_model_arguments(parser)
    group = parser.add_argument_group("allocation")
    group.add_argument(
        "--budget", default=None, help="comma-separated visual-token budgets (default: the model's budget)"
    )
    group.add_argument("--allocator", default=None, help="allocator to measure (default: the model's)")
    group.add_argument("--k-min", type=int, default=None, help="anchor tokens per segment (model default)")
    group.add_argument(
        "--keep-tokens",
        type=int,
        default=None,
        help="a relevant segment counts as kept with at least this many tokens (default: k_max / 2)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--output", required=True, help="folder for routing.json and the plots")
    out.add_argument(
        "--plots", type=int, default=8, help="allocation plots of the first N videos (default 8)"
    )


def parse_budgets(text: str | None) -> list[int] | None:
    """``"64,128"`` → ``[64, 128]`` (``None`` stays ``None``); each checked like ``infer --budget``."""
    if text is None:
        return None
    try:
        budgets = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--budget {text}: give comma-separated whole numbers, e.g. 64,128") from None
    if not budgets:
        raise ConfigError(f"--budget {text!r}: give at least one budget")
    for budget in budgets:
        check_budget(budget)
    return budgets


def run(args: argparse.Namespace) -> int:
    from tempo_kit.quiet import quiet_library_messages

    with quiet_library_messages():
        return diagnose(args)


def diagnose(args: argparse.Namespace) -> int:
    """Score, report and plot (the body of ``tempo-kit route``)."""
    import torch

    from tempo_kit.data.annotations import load_annotations
    from tempo_kit.data.skips import SkipLog
    from tempo_kit.evaluation.routing import allocate, plot_roc, plot_video, routing_report, score_rows
    from tempo_kit.model import TempoModel
    from tempo_kit.registry import ALLOCATORS

    check_model_arguments(args)
    from tempo_kit.atomic import check_output_path

    check_output_path(args.output, what="--output", kind="folder")
    if args.k_min is not None:
        check_budget(None, args.k_min)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: give a positive number of rows")
    if args.plots < 0:
        raise ConfigError(f"--plots {args.plots}: give 0 or more")
    given_budgets = parse_budgets(args.budget)
    chosen = None
    if args.allocator is not None:
        from tempo_kit.registry import RegistryError

        try:
            chosen = ALLOCATORS.build(args.allocator)
        except RegistryError as error:
            raise ConfigError(f"--allocator {args.allocator}: {error}") from None
    annotations = Path(args.annotations)
    skip_log = SkipLog()
    records = load_annotations(annotations, "skip", skip_log)[: args.limit]
    if not any(r.relevant_spans is not None for r in records):
        raise ConfigError(
            f"--annotations {annotations}: none of its {len(records)} valid rows carries relevant_spans; "
            "routing needs them (tempo-kit make-synthetic writes them, tempo-kit convert-grounding converts "
            "grounding datasets)"
        )
    overrides = {} if args.dtype is None else {"compressor": {"dtype": args.dtype}}
    model = TempoModel.from_pretrained(args.model, **overrides).to(args.device).eval()
    config = model.config
    sampling = sampling_of(args).with_preprocessing(config.preprocessing)
    budgets = given_budgets or [int(config.budget)]
    k_max = int(model.compressor.k_max)
    k_min = config.k_min if args.k_min is None else args.k_min
    keep_tokens = max(1, k_max // 2) if args.keep_tokens is None else args.keep_tokens
    if not 1 <= keep_tokens <= k_max:
        raise ConfigError(f"--keep-tokens {keep_tokens}: must lie in [1, k_max = {k_max}]")
    allocator = model.allocator if chosen is None else chosen
    compressor = model.compressor
    if args.base_svlm is not None:
        from tempo_kit.inference.api import load_base_compressor

        compressor = load_base_compressor(args.base_svlm, dtype=args.dtype or "auto").to(args.device)
    with torch.no_grad():
        videos = score_rows(
            compressor,
            records,
            args.media_root if args.media_root is not None else annotations.parent,
            sampling=sampling,
            skip_log=skip_log,
        )
    if not videos:
        raise ConfigError(f"--annotations {annotations}: no row could be scored ({skip_log.summary()})")
    report = routing_report(videos, allocator, budgets, k_max=k_max, k_min=k_min, keep_tokens=keep_tokens)
    report["settings"].update(
        model=str(args.model),
        annotations=str(annotations),
        relevance="base" if args.base_svlm else "trained",
        **sampling.to_dict(),
        skipped=skip_log.summary(),
    )
    output = Path(args.output)
    write_json(output / "routing.json", report)
    plot_roc(videos, output / "roc.png")
    for video in videos[: args.plots]:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in video.id)
        plot_video(
            video,
            allocate(allocator, video, k_max, max(budgets), k_min),
            output / "allocation" / f"{name}.png",
        )
    overall = report["overall"]
    auroc = "n/a" if overall["auroc"] is None else f"{overall['auroc']:.3f}"
    ap = "n/a" if overall["average_precision"] is None else f"{overall['average_precision']:.3f}"
    print(
        f"{overall['videos']} videos, {overall['segments']} segments ({overall['relevant']} relevant): AUROC {auroc}, AP {ap}"
    )
    for budget, stats in overall["budgets"].items():
        share = stats["relevant_kept_share"]
        print(
            f"budget {budget}: {stats['relevant_kept']}/{stats['relevant_segments']} relevant segments keep "
            f"≥ {keep_tokens} tokens ({0 if share is None else share:.1%}); tokens relevant "
            f"{stats['tokens_relevant']} vs irrelevant {stats['tokens_irrelevant']}"
        )
    print(f"{skip_log.summary()}; report: {output / 'routing.json'}")
    return 0
