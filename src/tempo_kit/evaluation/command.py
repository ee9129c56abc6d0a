"""``tempo-kit eval``: a multiple-choice benchmark over an annotation file, resumable, with sweeps.

    tempo-kit eval --model DIR --annotations lvbench.jsonl --format lvbench --media-root videos/ \\
        --output runs/lvbench --budget 4096,8192

Every combination of the comma-separated switches (``--budget``, ``--allocator``,
``--reduction``, ``--k-min``, ``--relevance``, ``--relevance-prompt``) is one setting with its own
results file ``<output>/<setting>.jsonl``; rerunning the same command resumes each file where it
stopped. ``<output>/summary.json`` holds every setting's accuracy (per sample and per category
mean), per category, per duration bucket, the benchmark's own numbers, and token statistics.

Each benchmark format asks in lmms-eval's words with its answer limit (:mod:`.presets`) and uses
the released evaluation's sampling and context (:mod:`.protocol`). Under ``torchrun`` each process
answers its share of the questions into its own file and rank 0 writes the merged summary.
``--print-prompts`` shows what the model will be asked, without loading it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.evaluation.items import DEFAULT_POST_PROMPT, DEFAULT_PRE_PROMPT
from tempo_kit.evaluation.protocol import EVAL_MAX_CONTEXT
from tempo_kit.inference.command import add_allocation_arguments, add_model_arguments, as_switch, sampling_of
from tempo_kit.registry import parse_spec
from tempo_kit.video.reading import Sampling

#: Longest results-file stem; longer setting names end in a hash of the full name (file systems
#: refuse names over 255 bytes).
MAX_SETTING_NAME = 120

#: What the SVLM is conditioned on: the whole multiple-choice prompt (as the LLM sees it) or the
#: bare question.
COMPRESSOR_QUERIES = ("prompt", "question")
#: What happens to a question whose video file is missing: stop before the first question (listing
#: every missing file), leave the question out of the scores, or count it as wrong.
MISSING_VIDEO_POLICIES = ("stop", "skip", "count")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("benchmark")
    data.add_argument("--annotations", required=True, help="annotation file (JSON or JSONL)")
    data.add_argument(
        "--format",
        default="kit",
        help="annotation format: kit (id/video/question/options/answer), videomme, lvbench, mlvu, "
        "longvideobench (each in its original and its lmms-eval variant; JSON, JSONL or Parquet)",
    )
    data.add_argument(
        "--prompt",
        default=None,
        help="prompt preset: kit, videomme, lvbench, mlvu, longvideobench (default: the format's own, "
        "byte-equal to lmms-eval's)",
    )
    data.add_argument(
        "--print-prompts",
        action="store_true",
        help="print one JSON object per question (id, prompt, options, answer, max_new_tokens) and exit "
        "without loading a model",
    )
    data.add_argument(
        "--missing-video",
        choices=MISSING_VIDEO_POLICIES,
        default="stop",
        help="a question whose video is missing: stop before starting and list them (default), skip it, "
        "or count it as wrong",
    )
    data.add_argument(
        "--media-root", default=None, help="folder video paths are relative to (default: the file's)"
    )
    data.add_argument("--limit", type=int, default=None, help="first N questions only (smoke run)")
    data.add_argument(
        "--pre-prompt", default=DEFAULT_PRE_PROMPT, help="instruction before the question (kit preset)"
    )
    data.add_argument(
        "--post-prompt", default=DEFAULT_POST_PROMPT, help="instruction after the options (kit preset)"
    )
    data.add_argument(
        "--compressor-query",
        choices=COMPRESSOR_QUERIES,
        default="prompt",
        help="what the SVLM is conditioned on: the full prompt (default) or the bare question",
    )
    add_model_arguments(parser, Sampling.evaluation(), max_context=EVAL_MAX_CONTEXT, model_required=False)
    parser.set_defaults(max_new_tokens=None)  # the prompt preset's (lmms-eval's task limit)
    add_allocation_arguments(parser, sweep=True)
    out = parser.add_argument_group("results")
    out.add_argument("--output", default=None, help="folder for the results JSONL files and summary.json")
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
    """Every combination of the sweep switches, with model defaults filled in (the allocator's
    arguments included: a model saved with ``ata:mode=exact`` is evaluated with them)."""
    from tempo_kit.hub import is_hub_model

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
                "allocator": dict(model_config.allocator) if allocator is None else parse_spec(allocator, "--allocator"),
                "reduction": model_config.reduction_name if reduction is None else reduction,
                "k_min": model_config.k_min if k_min is None else k_min,
                "relevance": relevance or "trained",
                "relevance_prompt": prompt or "default",
                **sampling_of(args).to_dict(),
                "max_context": args.max_context,
                "compressor_query": args.compressor_query,
                "prompt": args.prompt,
                "pre_prompt": args.pre_prompt,
                "post_prompt": args.post_prompt,
                "max_new_tokens": args.max_new_tokens,
                "model": args.model if is_hub_model(args.model) else str(Path(args.model).resolve()),
            }
        )
    return settings


def spec_text(spec: dict[str, Any]) -> str:
    """``ata`` or ``ata:mode=exact``: a spec as the ``--allocator`` switch writes it."""
    return ":".join([spec["name"], *(f"{k}={v}" for k, v in spec.items() if k != "name")])


def question_options(setting: dict[str, Any]) -> dict[str, Any]:
    """The keywords of :meth:`TempoPipeline.answer` one setting gives (the question's settings)."""
    return {
        "budget": setting["budget"],
        "allocator": setting["allocator"],
        "reduction": setting["reduction"],
        "k_min": setting["k_min"],
        "relevance": setting["relevance"],
        "relevance_prompt": None if setting["relevance_prompt"] == "default" else setting["relevance_prompt"],
        "sampling": Sampling(**{name: setting[name] for name in Sampling.names()}),
        "max_context": setting["max_context"],
        "max_new_tokens": setting["max_new_tokens"],
    }


def setting_name(setting: dict[str, Any]) -> str:
    """A file-name-safe name for a setting, e.g. ``b4096_ata_head_kmin4_trained-routing``."""
    name = (
        f"b{setting['budget']}_{spec_text(setting['allocator'])}_{setting['reduction']}_kmin{setting['k_min']}_"
        f"{setting['relevance']}-{setting['relevance_prompt']}"
    )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    if len(name) > MAX_SETTING_NAME:  # a long --relevance-prompt: keep the name a legal file name
        import hashlib

        name = f"{name[: MAX_SETTING_NAME - 11]}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


def make_answer_fn(pipeline, setting: dict[str, Any]):
    """The harness's ``(item, prompt) -> Reply`` for one setting of a loaded pipeline."""
    from tempo_kit.evaluation.harness import Reply

    options = question_options(setting)

    def answer(item, prompt: str) -> Reply:
        result = pipeline.answer(
            video=item.video,
            query=prompt,
            compressor_query=item.question if setting["compressor_query"] == "question" else None,
            **options,
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
        bench = s.get("benchmark") or {}
        groups = {
            "per task": bench.get("per_task"),
            "per type": bench.get("per_type"),
            "per duration": bench.get("per_duration") or bench.get("per_duration_group"),
        }
        if "m_avg" in bench:
            lines.append(f"{name} M-Avg (mean of the 7 MLVU tasks): {_percent(bench['m_avg'])}")
        for title, group in groups.items():
            if group:
                parts = ", ".join(f"{k} {_percent(v['accuracy'])} (n={v['count']})" for k, v in group.items())
                lines.append(f"{name} {title}: {parts}")
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
    for setting in settings:
        try:
            pipeline.question("?", **question_options(setting))
        except ConfigError as error:
            raise ConfigError(as_switch(str(error))) from None


def current_shard() -> tuple[int, int]:
    """``(rank, world_size)`` of this process under torchrun (``RANK``/``WORLD_SIZE``), else ``(0, 1)``."""
    import os

    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _barrier(shard: tuple[int, int]) -> None:
    """Wait for every rank (gloo, so it needs no GPU) before rank 0 merges the results."""
    if shard[1] == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def check_videos(benchmark, policy: str):
    """Apply ``--missing-video`` before the first question; ``stop`` lists every missing file."""
    missing = [item for item in benchmark.items if not Path(item.video).is_file()]
    if not missing or policy == "count":
        return benchmark.items
    if policy == "stop":
        listed = "\n  ".join(item.video for item in missing[:20])
        more = f"\n  … and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise MediaError(
            f"{len(missing)} of {len(benchmark.items)} questions have no video file:\n  {listed}{more}\n"
            "check --media-root, or pass --missing-video skip (leave them out) or count (score them wrong)"
        )
    gone = {item.id for item in missing}
    return [item for item in benchmark.items if item.id not in gone]


def run(args: argparse.Namespace) -> int:
    from tempo_kit.atomic import write_json
    from tempo_kit.evaluation.benchmarks import check_format
    from tempo_kit.evaluation.harness import Run, run_sweep, summarize_runs
    from tempo_kit.evaluation.items import load_benchmark
    from tempo_kit.evaluation.presets import get_preset
    from tempo_kit.evaluation.printed import earlier_settings, print_prompts, report_skipped
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.inference.command import check_model_arguments

    if args.format != "kit":
        check_format(args.format)
    preset = get_preset(args.prompt or args.format, args.pre_prompt, args.post_prompt)
    args.prompt = preset.name
    if args.max_new_tokens is None:
        args.max_new_tokens = preset.max_new_tokens
    benchmark = load_benchmark(args.annotations, media_root=args.media_root, limit=args.limit, fmt=args.format)
    if args.print_prompts:
        report_skipped(benchmark, sys.stderr)  # stdout stays one JSON record a line
        print_prompts(benchmark, preset)
        return 0
    for flag, value in (("--model", args.model), ("--output", args.output)):
        if value is None:
            raise ConfigError(f"{flag} is required (only --print-prompts runs without a model)")
    check_model_arguments(args)
    if args.no_progress:
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    from tempo_kit.atomic import check_output_path
    from tempo_kit.run_lock import run_lock

    output_folder = check_output_path(args.output, what="--output", kind="folder")
    report_skipped(benchmark, sys.stdout)
    items = check_videos(benchmark, args.missing_video)
    # a second eval into the same --output is refused, not interleaved
    with run_lock(output_folder, "eval"):
        shard = current_shard()
        device = args.device
        if shard[1] > 1 and device == "cuda":  # one whole model per GPU under torchrun
            import os

            device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        pipeline = TempoPipeline.from_pretrained(
            args.model, device=device, dtype=args.dtype, base_svlm=args.base_svlm, reuse_last_video=True
        )
        settings = settings_from_args(args, pipeline.model.config)
        check_settings(settings, pipeline)
        output = Path(args.output)

        names = [setting_name(s) for s in settings]
        runs = [Run(make_answer_fn(pipeline, s), output / f"{n}.jsonl", s, n) for s, n in zip(settings, names)]
        summaries = run_sweep(
            items,
            runs,
            prompt_fn=preset.build,
            on_error=args.on_error,
            overwrite=args.overwrite,
            progress=not args.no_progress and shard[0] == 0,
            description=names[0] if len(names) == 1 else f"eval × {len(names)} settings",
            fmt=args.format,
            shard=shard,
        )
        _barrier(shard)
        if shard[0] != 0:
            return 0
        if shard[1] > 1:
            merged = summarize_runs(items, runs, fmt=args.format)
            for summary, partial in zip(merged, summaries):
                summary["resumed"] = partial["resumed"]
            summaries = merged
        for summary in summaries:
            summary["skipped_rows"] = [str(skip) for skip in benchmark.skipped]
            summary["skipped_missing_videos"] = len(benchmark.items) - len(items)
        named = dict(zip(names, summaries))
        summary_path = output / "summary.json"
        everything: dict[str, Any] = {}
        if summary_path.is_file() and not args.overwrite:  # keep the settings of earlier sweeps
            everything = earlier_settings(summary_path)
        everything.update(named)
        document = {"annotations": str(args.annotations), "format": args.format, "settings": everything}
        write_json(summary_path, document)
        if args.json:
            print(json.dumps(named, indent=2))
        else:
            print(format_summaries(named))
            print(f"results: {output}/<setting>.jsonl, summary: {summary_path}")
        failed = [name for name, s in named.items() if s["count"] and s["errors"] == s["count"]]
        if failed:
            print(f"every question failed in {', '.join(failed)}; see the 'error' field of the results records")
            return 1
        return 0
