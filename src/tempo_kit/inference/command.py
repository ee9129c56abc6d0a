"""``tempo-kit infer``: answer one question about one video and show where the tokens went.

    tempo-kit infer --model DIR --video FILE --query TEXT [--budget 4096] [--json] [--plot out.png]

Prints the answer, the tokens used against the budget, tokens per frame, segments kept and the
time of each phase; ``--json`` prints the same as one JSON object on stdout (progress bars stay on
stderr); ``--plot`` writes the allocation-over-time figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.inference.defaults import RELEVANCE_SOURCES
from tempo_kit.registry import parse_spec
from tempo_kit.video.reading import Sampling

#: figure formats ``--plot`` writes (matplotlib picks the format from the file ending)
PLOT_SUFFIXES = frozenset({".png", ".pdf", ".svg", ".jpg"})


def add_model_arguments(
    parser: argparse.ArgumentParser,
    sampling: Sampling | None = None,
    max_context: int | None = None,
    model_required: bool = True,
) -> None:
    """Options shared by ``infer`` and ``eval``: the model and how it reads a video.

    ``sampling`` and ``max_context`` are the defaults of the released script the verb mirrors
    (inference: :meth:`Sampling.inference` and the model config's context, 16384 as released;
    evaluation: :meth:`Sampling.evaluation` and 32768; compatibility §1, §4). ``eval`` makes
    ``--model`` optional because ``--print-prompts`` runs without one.
    """
    sampling = sampling or Sampling.inference()
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", required=model_required, help="kit-format model folder (see `tempo-kit convert`)"
    )
    group.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cuda:1 (default: cpu)")
    group.add_argument("--dtype", default=None, help="load SVLM and LLM in this dtype, e.g. bfloat16")
    group.add_argument("--base-svlm", default=None, help="base Qwen3-VL folder, for --relevance base")
    add_sampling_arguments(parser, sampling)
    gen = parser.add_argument_group("generation")
    gen.add_argument(
        "--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="greedy decoding limit"
    )
    gen.add_argument(
        "--max-context",
        type=int,
        default=max_context,
        help="LLM context cap; visual rows beyond it are cut ("
        + ("the model's, 16384 as released" if max_context is None else str(max_context))
        + ")",
    )


def add_sampling_arguments(parser: argparse.ArgumentParser, sampling: Sampling) -> None:
    """One switch per :class:`~tempo_kit.video.reading.Sampling` field, generated from the field's
    declaration (type, choices, help), its default from ``sampling``."""
    group = parser.add_argument_group("sampling")
    for spec in dataclasses.fields(Sampling):
        default = getattr(sampling, spec.name)
        group.add_argument(
            f"--{spec.name.replace('_', '-')}",
            type=spec.metadata["type"],
            default=default,
            choices=spec.metadata.get("choices"),
            help=spec.metadata["help"] + ("" if default is None else f" ({default})"),
        )


def sampling_of(args: argparse.Namespace) -> Sampling:
    """The :class:`Sampling` the sampling flags say, checked; an error names the flag and its value."""
    values = {name: getattr(args, name) for name in Sampling.names()}
    try:
        return Sampling(**values)
    except ConfigError as error:
        text = str(error)
        for name in sorted(Sampling.names(), key=len, reverse=True):
            prefix = f"{name}={values[name]!r}"
            if text.startswith(prefix):
                text = f"--{name.replace('_', '-')} {values[name]}:{text[len(prefix):]}"
                break
        raise ConfigError(text) from None


def add_allocation_arguments(parser: argparse.ArgumentParser, sweep: bool = False) -> None:
    """Allocation switches; with ``sweep`` each takes a comma-separated list."""
    group = parser.add_argument_group(
        "allocation" + (" (comma-separated lists sweep every combination)" if sweep else "")
    )
    kind = str if sweep else int
    group.add_argument(
        "--budget", type=kind, default=None, help="visual-token budget per video (model default: 8192)"
    )
    group.add_argument(
        "--allocator",
        default=None,
        help="ata, uniform, topk, random, adversarial, prune, with arguments as NAME:key=value "
        "(e.g. ata:mode=exact); model default: ata",
    )
    group.add_argument("--reduction", default=None, help="head, tail, merge, random (model default: head)")
    group.add_argument(
        "--k-min", type=kind, default=None, help="anchor tokens per segment (model default: 4)"
    )
    group.add_argument(
        "--relevance",
        default="trained",
        help=f"relevance source: {' or '.join(RELEVANCE_SOURCES)} (needs --base-svlm)",
    )
    group.add_argument(
        "--relevance-prompt",
        default=None,
        help="routing, standard, qwen_default or literal text (default: routing)",
    )


def question_options(args: argparse.Namespace) -> dict:
    """What the allocation and generation switches say about answering one question: the
    keywords of :func:`~tempo_kit.inference.question.resolve_question` that ``infer``, ``chat``
    and ``demo`` share (``TempoPipeline.answer``, ``VideoSession.ask``)."""
    return {
        "budget": args.budget,
        "allocator": None if args.allocator is None else parse_spec(args.allocator, "--allocator"),
        "reduction": args.reduction,
        "k_min": args.k_min,
        "relevance": args.relevance,
        "relevance_prompt": args.relevance_prompt,
        "max_context": args.max_context,
        "max_new_tokens": args.max_new_tokens,
    }


def saved_model_config(folder: str | Path):
    """The :class:`~tempo_kit.model.config.TempoConfig` a model folder (or hub id) stores, read without
    building the model (seconds before a load that takes minutes)."""
    from tempo_kit.hub import model_folder
    from tempo_kit.model.config import TempoConfig
    from tempo_kit.model.storage import read_config
    from tempo_kit.parts import COMPONENTS

    return TempoConfig.from_mapping(read_config(model_folder(folder), COMPONENTS))


def check_question(args: argparse.Namespace, query: str, options: dict | None = None) -> None:
    """Every question setting the switches give, resolved on the saved model config as the
    pipeline will resolve it (:func:`~tempo_kit.inference.question.resolve_question`): a bad
    value fails here, naming its switch, before the model loads. ``chat`` and ``demo`` pass a
    placeholder ``query``: their questions come later. ``options``: the keywords the verb passes
    (default: :func:`question_options`)."""
    from tempo_kit.inference.question import resolve_question

    options = dict(question_options(args) if options is None else options)
    if options.get("max_new_tokens", 1) is None:
        del options["max_new_tokens"]
    try:
        resolve_question(saved_model_config(args.model), query, sampling=sampling_of(args), **options)
    except ConfigError as error:
        raise ConfigError(as_switch(str(error))) from None


def as_switch(message: str) -> str:
    """A resolver message about ``key=value`` said of the switch that set it: ``budget=0 must be …``
    → ``--budget 0: must be …``; ``allocator: …`` → ``--allocator: …``; others unchanged."""
    match = re.match(r"(\w+)=('[^']*'|\"[^\"]*\"|\S+?)(?::|\s)\s*(.*)", message, re.DOTALL)
    if match:
        key, value, rest = match.groups()
        return f"--{key.replace('_', '-')} {value.strip(chr(39))}: {rest}"
    key = message.split(":", 1)[0]
    return f"--{key.replace('_', '-')}: {message.split(':', 1)[1].strip()}" if key.isidentifier() else message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, help="video file")
    parser.add_argument("--query", required=True, help="the question")
    add_model_arguments(parser)
    parser.add_argument(
        "--call-token-budget",
        type=int,
        default=None,
        metavar="N",
        help="most SVLM tokens one compressor call holds (segments × the longest sequence): bounds the "
        "compressor's activation memory whatever the video's frame size (default: the model's; none)",
    )
    add_allocation_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json", action="store_true", help="print one JSON object (answer, tokens, timings, segments)"
    )
    out.add_argument("--plot", default=None, metavar="FILE.png", help="write the allocation-over-time figure")
    out.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="decode the next chunks of the video in a background thread while the compressor works "
        "(same answer; host memory holds a few chunks, not the whole video)",
    )


def format_result(result) -> str:
    """The human-readable report of an :class:`~tempo_kit.inference.api.InferenceResult`."""
    stats = result.token_stats()
    budget = stats["budget"]
    share = f" ({100 * stats['visual_tokens'] / budget:.0f}% of the budget {budget})" if budget else ""
    timings = " · ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
    counts = " ".join(str(int(c)) for c in result.allocation.counts)
    duration = f", {result.duration:.1f} s of video" if result.duration is not None else ""
    return "\n".join(
        [
            f"Answer: {result.answer}",
            f"Visual tokens: {stats['visual_tokens']}{share}, {stats['tokens_per_frame']:.2f} per frame",
            f"Segments: {stats['kept_segments']}/{stats['num_segments']} kept, {stats['num_frames']} frames{duration}, "
            f"k_min {stats['k_min']}, k_max {stats['k_max']}",
            f"Tokens per segment: {counts}",
            f"Timings: {timings}",
        ]
    )


def check_budget(budget: int | None, k_min: int | None = None) -> None:
    """Refuse a budget that leaves the LLM no visual tokens, or a negative ``k_min``."""
    if budget is not None and budget < 1:
        raise ConfigError(
            f"--budget {budget}: the budget is the number of visual tokens for the whole video and must "
            "be ≥ 1; pass a positive number such as 4096 or 8192 (the paper's budgets)"
        )
    if k_min is not None and k_min < 0:
        raise ConfigError(f"--k-min {k_min}: anchor tokens per segment must be ≥ 0 (the paper uses 4)")


def check_model_arguments(args: argparse.Namespace) -> None:
    """Sampling, generation and device switches shared by ``infer`` and ``eval``."""
    import math

    if not math.isfinite(args.fps):
        raise ConfigError(f"--fps {args.fps}: frames sampled per second must be a finite number > 0 (the paper uses 2)")
    sampling_of(args)
    if args.max_context is not None and args.max_context < 1:
        raise ConfigError(f"--max-context {args.max_context}: the LLM needs a positive context (released: 16384)")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens}: the answer needs at least 1 token")
    from tempo_kit.devices import check_device

    check_device(args.device)


def check_arguments(args: argparse.Namespace) -> None:
    """Catch typos before the model loads (which takes minutes for Tempo-6B on a cold disk)."""
    if not args.query.strip():
        raise ConfigError(
            '--query is empty; pass the question to answer, e.g. --query "What happens at the end?"'
        )
    if not Path(args.video).is_file():
        raise MediaError(f"--video {args.video}: file not found; check the path")
    check_budget(args.budget, args.k_min)
    if args.call_token_budget is not None and args.call_token_budget < 1:
        raise ConfigError(
            f"--call-token-budget {args.call_token_budget}: the most tokens one compressor call holds must be "
            "≥ 1; pass a positive number, or leave the switch out for the model's own"
        )
    check_model_arguments(args)
    check_allocation_names(args)
    if args.plot is not None and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(
            f"--plot {args.plot}: name an image file ending in {', '.join(sorted(PLOT_SUFFIXES))}"
        )
    if args.plot is not None:
        from tempo_kit.atomic import check_output_path

        check_output_path(args.plot, what="--plot", kind="file")


def check_allocation_names(args: argparse.Namespace) -> None:
    """``--allocator`` / ``--reduction`` name registered components (with a "did you mean")."""
    from tempo_kit.registry import ALLOCATORS, REDUCTIONS, RegistryError, check_spec

    if args.allocator is not None:
        check_spec(ALLOCATORS, parse_spec(args.allocator, "--allocator"), f"--allocator {args.allocator}")
    switches = (("--reduction", REDUCTIONS, args.reduction),)
    for flag, registry, value in switches:
        if value is not None and value not in registry:
            try:
                registry.get(value)
            except RegistryError as error:  # carries "did you mean" and the known names
                raise ConfigError(f"{flag} {value}: {error}") from None


def run(args: argparse.Namespace) -> int:
    from tempo_kit.inference.api import TempoPipeline

    check_arguments(args)
    check_question(args, args.query)
    if args.no_progress:
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    overrides = {} if args.call_token_budget is None else {"compressor": {"call_token_budget": args.call_token_budget}}
    pipeline = TempoPipeline.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, base_svlm=args.base_svlm, **overrides
    )
    result = pipeline.answer(
        video=args.video,
        query=args.query,
        sampling=sampling_of(args),
        overlap=args.overlap,
        progress=not args.no_progress,
        **question_options(args),
    )
    plot, plot_error = None, None
    if args.plot:
        from tempo_kit.errors import TempoKitError

        try:
            plot = result.plot(args.plot)
        except (TempoKitError, OSError, ValueError) as error:  # the answer is printed all the same
            plot_error = error
    if args.json:
        document = result.to_dict()
        if plot is not None:
            document["plot"] = str(plot)
        print(json.dumps(document, indent=2))
    else:
        print(format_result(result))
        if plot is not None:
            print(f"Allocation plot: {plot}")
    sys.stdout.flush()
    if plot_error is not None:
        print(f"tempo-kit infer: error: the answer is above; the plot was not written: {plot_error}", file=sys.stderr)
        return 1
    return 0
