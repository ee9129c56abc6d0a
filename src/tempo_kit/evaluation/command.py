"""``tempo-kit eval``: a multiple-choice benchmark over an annotation file, resumable, with sweeps.

    tempo-kit eval --model DIR --annotations lvbench.jsonl --format lvbench --media-root videos/ \\
        --output runs/lvbench --budget 4096,8192

Every combination of the comma-separated switches (``--budget``, ``--allocator``,
``--reduction``, ``--k-min``, ``--relevance``, ``--relevance-prompt``) is one setting with its own
results file ``<output>/<setting>.jsonl``; rerunning the same command resumes each file where it
stopped. ``<output>/summary.json`` holds every setting's accuracy (per sample and per category
mean), per category, per duration bucket, and token statistics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError
from tempo_kit.evaluation.items import DEFAULT_POST_PROMPT, DEFAULT_PRE_PROMPT
from tempo_kit.inference.command import add_allocation_arguments, add_model_arguments

#: The released evaluation scripts sample at least 8 frames and cap the LLM context at 32768
#: tokens (compatibility §7), unlike its inference script (4 and 16384).
EVAL_MIN_FRAMES = 8
EVAL_MAX_CONTEXT = 32768

#: What the SVLM is conditioned on: the whole multiple-choice prompt (as the LLM sees it) or the
#: bare question.
COMPRESSOR_QUERIES = ("prompt", "question")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("benchmark")
    data.add_argument("--annotations", required=True, help="annotation file (JSON or JSONL)")
    data.add_argument(
        "--format",
        default="kit",
        help="annotation format: kit (id/video/question/options/answer), videomme, lvbench, mlvu, longvideobench",
    )
    data.add_argument(
        "--media-root", default=None, help="folder video paths are relative to (default: the file's)"
    )
    data.add_argument("--limit", type=int, default=None, help="first N questions only (smoke run)")
    data.add_argument("--pre-prompt", default=DEFAULT_PRE_PROMPT, help="instruction before the question")
    data.add_argument("--post-prompt", default=DEFAULT_POST_PROMPT, help="instruction after the options")
    data.add_argument(
        "--compressor-query",
        choices=COMPRESSOR_QUERIES,
        default="prompt",
        help="what the SVLM is conditioned on: the full prompt (default) or the bare question",
    )
    add_model_arguments(parser, min_frames=EVAL_MIN_FRAMES, max_context=EVAL_MAX_CONTEXT)
    add_allocation_arguments(parser, sweep=True)
    out = parser.add_argument_group("results")
    out.add_argument("--output", required=True, help="folder for the results JSONL files and summary.json")
    out.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    out.add_argument(
        "--on-error",
        choices=("record", "raise"),
        default="record",
        help="an unreadable video: record it as wrong and go on (default), or stop",
    )
    out.add_argument("--json", action="store_true", help="print the summaries as JSON")
    out.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _split(value: Any, cast=str) -> list[Any]:
    if value is None:
        return [None]
    try:
        return [cast(v.strip()) for v in str(value).split(",") if v.strip()]
    except ValueError as error:
        raise ConfigError(f"cannot read {value!r} as a comma-separated list: {error}") from error


def _budget(text: str) -> int:
    """``4096`` or ``4k`` / ``8K``."""
    match = re.fullmatch(r"(\d+)([kK]?)", text)
    if not match:
        raise ValueError(f"budget {text!r} is not an integer (or 4k-style)")
    return int(match.group(1)) * (1024 if match.group(2) else 1)


def settings_from_args(args: argparse.Namespace, model_config) -> list[dict[str, Any]]:
    """Every combination of the sweep switches, with model defaults filled in."""
    allocator_default = model_config.allocator.get("name")
    combos = itertools.product(
        _split(args.budget, _budget),
        _split(args.allocator),
        _split(args.reduction),
        _split(args.k_min, int),
        _split(args.relevance),
        _split(args.relevance_prompt),
    )
    settings = []
    for budget, allocator, reduction, k_min, relevance, prompt in combos:
        settings.append(
            {
                "budget": model_config.budget if budget is None else budget,
                "allocator": allocator_default if allocator is None else allocator,
                "reduction": model_config.reduction_name if reduction is None else reduction,
                "k_min": model_config.k_min if k_min is None else k_min,
                "relevance": relevance or "trained",
                "relevance_prompt": prompt or "default",
                "max_frames": args.max_frames,
                "min_frames": args.min_frames,
                "window": args.window,
                "fps": args.fps,
                "preprocessing": args.preprocessing,
                "resize": args.resize,
                "time_base": args.time_base,
                "max_context": args.max_context,
                "compressor_query": args.compressor_query,
                "pre_prompt": args.pre_prompt,
                "post_prompt": args.post_prompt,
                "max_new_tokens": args.max_new_tokens,
                "model": str(Path(args.model).resolve()),
            }
        )
    return settings


def setting_name(setting: dict[str, Any]) -> str:
    """A file-name-safe name for a setting, e.g. ``b4096_ata_head_kmin4_trained-routing``."""
    name = (
        f"b{setting['budget']}_{setting['allocator']}_{setting['reduction']}_kmin{setting['k_min']}_"
        f"{setting['relevance']}-{setting['relevance_prompt']}"
    )
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def make_answer_fn(pipeline, setting: dict[str, Any]):
    """The harness's ``(item, prompt) -> Reply`` for one setting of a loaded pipeline."""
    from tempo_kit.evaluation.harness import Reply

    prompt_name = None if setting["relevance_prompt"] == "default" else setting["relevance_prompt"]

    def answer(item, prompt: str) -> Reply:
        result = pipeline.answer(
            video=item.video,
            query=prompt,
            compressor_query=item.question if setting["compressor_query"] == "question" else None,
            budget=setting["budget"],
            allocator=setting["allocator"],
            reduction=setting["reduction"],
            k_min=setting["k_min"],
            relevance=setting["relevance"],
            relevance_prompt=prompt_name,
            max_frames=setting["max_frames"],
            min_frames=setting["min_frames"],
            window=setting["window"],
            fps=setting["fps"],
            preprocessing=setting["preprocessing"],
            resize=setting["resize"],
            time_base=setting["time_base"],
            max_context=setting["max_context"],
            max_new_tokens=setting["max_new_tokens"],
        )
        return Reply(
            text=result.answer,
            tokens=result.token_stats(),
            timings=result.timings,
            info={"reused": list(result.reused)},
        )

    return answer


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def format_summaries(named: dict[str, dict[str, Any]]) -> str:
    """A table: one row per setting, then per-category and per-duration accuracies."""
    header = (
        f"{'setting':<44} {'n':>5} {'acc':>6} {'cat-avg':>7} {'unparsed':>8} {'errors':>6} {'tok/frame':>9}"
    )
    lines = [header, "-" * len(header)]
    for name, s in named.items():
        tpf = s["tokens"].get("tokens_per_frame", {}).get("mean")
        lines.append(
            f"{name:<44} {s['count']:>5} {_percent(s['accuracy']):>6} {_percent(s['category_mean']):>7} "
            f"{s['unparsed']:>8} {s['errors']:>6} {('—' if tpf is None else f'{tpf:.2f}'):>9}"
        )
    for name, s in named.items():
        for title, key in (("category", "per_category"), ("duration", "per_duration")):
            if s[key]:
                parts = ", ".join(
                    f"{k} {_percent(v['accuracy'])} (n={v['count']})" for k, v in s[key].items()
                )
                lines.append(f"{name} by {title}: {parts}")
    return "\n".join(lines)


def check_settings(settings: list[dict[str, Any]], pipeline) -> None:
    """Refuse a bad switch before the first question, not as an error on every record."""
    from tempo_kit.inference.api import RELEVANCE_SOURCES
    from tempo_kit.inference.command import check_budget
    from tempo_kit.registry import ALLOCATORS, REDUCTIONS

    for setting in settings:
        if setting["allocator"] not in ALLOCATORS:
            raise ConfigError(
                f"--allocator {setting['allocator']!r}: unknown; known: {', '.join(ALLOCATORS.list())}"
            )
        if setting["reduction"] not in REDUCTIONS:
            raise ConfigError(
                f"--reduction {setting['reduction']!r}: unknown; known: {', '.join(REDUCTIONS.list())}"
            )
        if setting["relevance"] not in RELEVANCE_SOURCES:
            raise ConfigError(f"--relevance {setting['relevance']!r}: use {' or '.join(RELEVANCE_SOURCES)}")
        if setting["relevance"] == "base" and pipeline.base_compressor is None:
            raise ConfigError("--relevance base needs --base-svlm DIR (the base Qwen3-VL-2B-Instruct folder)")
        check_budget(setting["budget"], setting["k_min"])


def run(args: argparse.Namespace) -> int:
    from tempo_kit.evaluation.harness import Run, run_sweep
    from tempo_kit.evaluation.items import format_prompt, load_items
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.inference.command import check_model_arguments

    check_model_arguments(args)
    if args.no_progress:
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    items = load_items(args.annotations, media_root=args.media_root, limit=args.limit, fmt=args.format)
    pipeline = TempoPipeline.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, base_svlm=args.base_svlm, reuse_last_video=True
    )
    settings = settings_from_args(args, pipeline.model.config)
    check_settings(settings, pipeline)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    def prompt_fn(item):
        return format_prompt(item, pre_prompt=args.pre_prompt, post_prompt=args.post_prompt)

    names = [setting_name(s) for s in settings]
    runs = [Run(make_answer_fn(pipeline, s), output / f"{n}.jsonl", s, n) for s, n in zip(settings, names)]
    summaries = run_sweep(
        items,
        runs,
        prompt_fn=prompt_fn,
        on_error=args.on_error,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        description=names[0] if len(names) == 1 else f"eval × {len(names)} settings",
    )
    named = dict(zip(names, summaries))
    summary_path = output / "summary.json"
    everything: dict[str, Any] = {}
    if summary_path.is_file() and not args.overwrite:  # keep the settings of earlier sweeps
        everything = json.loads(summary_path.read_text()).get("settings", {})
    everything.update(named)
    document = {"annotations": str(args.annotations), "format": args.format, "settings": everything}
    summary_path.write_text(json.dumps(document, indent=2) + "\n")
    if args.json:
        print(json.dumps(named, indent=2))
    else:
        print(format_summaries(named))
        print(f"results: {output}/<setting>.jsonl, summary: {summary_path}")
    return 0
