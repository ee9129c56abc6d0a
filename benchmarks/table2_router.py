"""Paper Table 2 (B: routing) on CPU, over several seeds, with question-dependent routing.

    python benchmarks/table2_router.py --out outputs/table2 \\
        --results benchmarks/results/table2_router_cpu.md

Per seed, on tiny random-initialised Qwen3-VL / Qwen3 checkpoints and the spliced task of
:mod:`table2_task` (every segment an equally salient striped shape; the question names the shape
whose stripe colours it asks):

1. the **joint stage** (:func:`table2_train.train_joint`) trains every part at once on short
   videos: the answer loss (the colours of the one shape among background segments) and the router
   objective (which of several shapes the question names), so the relevance learns to follow the
   question while the memory the LLM reads learns with the LLM (a router stage run alone moves the
   memory under a frozen LLM and loses answers);
2. the **answer stage** (:func:`table2_train.train_answer`) trains projector and LLM on the frozen
   joint-stage compressor's memory, on videos growing from 2 to ``N`` segments (curriculum), all
   ``k_max`` tokens per segment unless ``--augment`` trains some batches on random allocations;
3. **evaluation** on held-out videos spliced from held-out segments: answer accuracy and needle
   tokens for every allocator at each budget and with all tokens; routing AUROC of the trained
   router, the untrained relevance, pixel saliency and position; accuracy against the needle's
   token count; and a router-quality sweep (noise added to the trained relevance's logits) for ATA
   and top-k.

Intervals: 95 % Wilson over all seeds' test videos, and the range of the seed means. Writes
``<out>/table2.json`` and, with ``--results``, the markdown table, a plot beside it, the Table 2
section of ``docs/benchmarks.md`` (between its markers) and its plot, all naming the commit that ran.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import ROOT, git_commit  # this script's folder is on sys.path when it runs
from table2_eval import ALLOCATORS, NeedleTokens, answers, noised, per_video_auroc, routing_scores, summarise
from table2_report import DOCS_PLOT, check_ordering, markdown, plot, update_docs
from table2_task import PoolCache, SegmentPool, cache_pool, make_pool, splice
from table2_train import AnswerSettings, JointSettings, train_answer, train_joint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", default="outputs/table2", help="work folder (tiny checkpoints, table2.json)")
    add("--results", default=None, help="markdown table to write (a .png plot goes beside it; docs updated)")
    add(
        "--docs",
        default=str(ROOT / "docs" / "benchmarks.md"),
        help="page whose Table 2 section --results rewrites",
    )
    add("--seeds", default="0,1,2", help="comma-separated seeds (data, weights, training, noise)")
    add("--train-pool", type=int, default=96, help="training segments (videos are spliced from them)")
    add("--test-pool", type=int, default=48, help="held-out segments")
    add("--train-blanks", type=int, default=48, help="background-only training segments")
    add("--test-blanks", type=int, default=24, help="background-only held-out segments")
    add(
        "--distractors",
        type=int,
        default=0,
        help="other shapes in each Table 2 video (the rest background); routing is also measured on videos "
        "where every segment is a shape",
    )
    add("--test-videos", type=int, default=200, help="held-out videos per seed")
    add("--segments", type=int, default=8, help="segments per video (N)")
    add("--size", default="64,64", help="frame height,width")
    add("--stripes", type=int, default=1, help="colour stripes per shape (the answer's length)")
    add("--k-max", type=int, default=16, help="memory tokens per segment")
    add("--k-min", type=int, default=1,
        help="ATA's anchor: the paper's 4 of k_max=128 is 3 %% of a segment; 1 of 16 is the nearest here")
    add("--budgets", default="12,16,24", help="binding visual-token budgets per video (all tokens: N·k_max)")
    add(
        "--joint-steps",
        type=int,
        default=JointSettings.steps,
        help="steps of the joint (answer + relevance) stage",
    )
    add("--joint-batch", type=int, default=JointSettings.batch)
    add("--joint-segments", type=int, default=JointSettings.segments, help="segments per joint-stage video")
    add(
        "--joint-lr", type=float, default=JointSettings.lr, help="the SVLM's learning rate in the joint stage"
    )
    add(
        "--joint-head-lr",
        type=float,
        default=JointSettings.head_lr,
        help="memory tokens, projector and LLM in the joint stage",
    )
    add(
        "--joint-single",
        type=float,
        default=JointSettings.single,
        help="share of joint steps on one-segment videos (answer only) before the relevance joins",
    )
    add("--router-weight", type=float, default=JointSettings.router_weight, help="relevance loss weight")
    add("--answer-steps", type=int, default=AnswerSettings.steps)
    add("--answer-batch", type=int, default=AnswerSettings.batch)
    add("--answer-lr", type=float, default=AnswerSettings.lr)
    add(
        "--curriculum",
        type=float,
        default=AnswerSettings.curriculum,
        help="share of answer steps over which videos grow from 2 to N segments (0: N from the start)",
    )
    add(
        "--augment",
        type=float,
        default=AnswerSettings.augment,
        help="share of answer batches trained on a random allocation instead of all tokens",
    )
    add("--noise", default="0,1,2,inf", help="router-quality sweep: noise × the logits' spread")
    add("--needle-tokens", default="0,1,2,4,8,16", help="tokens given to the needle segment (others k_min)")
    add("--max-new-tokens", type=int, default=12)
    add(
        "--jobs",
        type=int,
        default=1,
        help="seeds run side by side in this many processes (one torch thread each)",
    )
    return parser.parse_args(argv)


@dataclass
class Trained:
    """One seed's trained model with its segment pools and their cached compressor outputs."""

    model: object
    train_pool: SegmentPool
    test_pool: SegmentPool
    test_cache: PoolCache
    untrained: PoolCache  # the test pool under the relevance before training
    generator: torch.Generator
    times: dict
    losses: dict


def train_seed(args: argparse.Namespace, seed: int, log=print) -> Trained:
    """Tiny checkpoints, the segment pools and both training stages for one seed."""
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    times, begin = {}, time.perf_counter()
    tiny = Path(args.out) / f"tiny_{seed}"
    paths = make_tiny(tiny, seed=seed) if not (tiny / "llm" / "config.json").is_file() else {
        "svlm": tiny / "svlm", "llm": tiny / "llm"}  # fmt: skip
    model = TempoModel.from_config({
        "compressor": {"name": "qwen3_vl", "pretrained": str(paths["svlm"]), "k_max": args.k_max},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"])},
    }).eval()  # fmt: skip
    size = tuple(int(v) for v in args.size.split(","))
    train_pool = make_pool(args.train_pool, seed=seed, split="train", size=size, stripes=args.stripes,
                           blanks=args.train_blanks)  # fmt: skip
    test_pool = make_pool(args.test_pool, seed=seed, split="test", size=size, stripes=args.stripes,
                          blanks=args.test_blanks)  # fmt: skip
    untrained = cache_pool(model, test_pool)
    times["data_s"] = time.perf_counter() - begin

    start = time.perf_counter()
    joint = JointSettings(args.joint_steps, args.joint_batch, args.joint_segments, args.joint_lr, args.joint_head_lr,
                          router_weight=args.router_weight, single=args.joint_single)  # fmt: skip
    joint_loss = train_joint(model, train_pool, joint, generator, progress=log)
    times["joint_stage_s"] = time.perf_counter() - start
    log(
        f"joint stage {times['joint_stage_s']:.0f} s, loss {joint_loss[0]:.3f} → {_tail_mean(joint_loss):.3f}"
    )

    start = time.perf_counter()
    train_cache, test_cache = cache_pool(model, train_pool), cache_pool(model, test_pool)
    settings = AnswerSettings(args.answer_steps, args.answer_batch, args.answer_lr, args.segments,
                              args.curriculum, args.augment, args.k_min, args.distractors)  # fmt: skip
    answer_loss = train_answer(model, train_pool, train_cache, settings, generator, progress=log)
    times["answer_stage_s"] = time.perf_counter() - start
    losses = {"joint_loss": [joint_loss[0], _tail_mean(joint_loss)],
              "answer_loss": [answer_loss[0], _tail_mean(answer_loss)]}  # fmt: skip
    return Trained(model, train_pool, test_pool, test_cache, untrained, generator, times, losses)


def _tail_mean(losses: list[float], count: int = 20) -> float:
    return sum(losses[-count:]) / len(losses[-count:]) if losses else math.nan


def run_seed(args: argparse.Namespace, seed: int, log=print) -> dict:
    """Both stages and every measurement for one seed."""
    trained = train_seed(args, seed, log)
    return {"seed": seed, **evaluate_seed(args, trained, log)}


def evaluate_seed(args: argparse.Namespace, trained: Trained, log=print) -> dict:
    """Every measurement on one seed's held-out videos (answers, routing, needle curve, noise sweep)."""
    model, test_pool, test_cache = trained.model, trained.test_pool, trained.test_cache
    untrained = trained.untrained
    generator, times = trained.generator, dict(trained.times)
    start = time.perf_counter()
    videos = splice(test_pool, args.test_videos, args.segments, generator, args.distractors)
    crowded = splice(test_pool, args.test_videos, args.segments, generator, None)  # every segment a shape
    common = {"k_min": args.k_min, "max_new_tokens": args.max_new_tokens}
    full = args.segments * args.k_max
    rows = {
        f"all tokens|{full}": answers(
            model, test_pool, test_cache, videos, allocator="uniform", budget=full, **common
        )
    }
    for budget in [int(b) for b in args.budgets.split(",")]:
        for name, spec in ALLOCATORS.items():
            rows[f"{name}|{budget}"] = answers(
                model, test_pool, test_cache, videos, allocator=spec, budget=budget, **common
            )
    labels = [v.labels() for v in videos]
    curve = {
        tokens: answers(model, test_pool, test_cache, videos, allocator=NeedleTokens(tokens), budget=full,
                        relevance=labels, **common)["correct"]
        for tokens in [int(t) for t in args.needle_tokens.split(",")]
    }  # fmt: skip
    sweep_budget = int(args.budgets.split(",")[0])
    sweep = {}
    for level in [float(v) for v in args.noise.split(",")]:
        scores = noised(test_cache, videos, level, generator)
        sweep[str(level)] = {"auroc": per_video_auroc(scores, videos)}
        for name in ("top-k", "ATA (released)"):
            sweep[str(level)][name] = answers(model, test_pool, test_cache, videos, allocator=ALLOCATORS[name],
                                              budget=sweep_budget, relevance=scores, **common)["correct"]  # fmt: skip
    routing = {"every segment a shape": routing_scores(test_pool, test_cache, untrained, crowded),
               "Table 2 videos": routing_scores(test_pool, test_cache, untrained, videos)}  # fmt: skip
    times["evaluation_s"] = time.perf_counter() - start
    log(
        "routing AUROC (every segment a shape) "
        + ", ".join(f"{k} {v:.3f}" for k, v in routing["every segment a shape"].items())
    )
    return {"rows": rows, "needle_curve": curve, "sweep": sweep, "routing": routing, "times": times,
            **trained.losses}  # fmt: skip


def _log(text: str) -> None:
    print(text, flush=True)


def _one_seed(args: argparse.Namespace, seed: int) -> dict:
    torch.set_num_threads(1)
    return run_seed(args, seed, log=lambda text: _log(f"[seed {seed}] {text}"))


def run_seeds(args: argparse.Namespace, seeds: list[int]) -> list[dict]:
    """Every seed, ``--jobs`` at a time in worker processes (each seed is independent and seeded)."""
    if args.jobs <= 1:
        return [_one_seed(args, seed) for seed in seeds]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(_one_seed, [args] * len(seeds), seeds))


def aggregate(seeds: list[dict]) -> dict:
    """Every measurement pooled over seeds (:func:`table2_eval.summarise`)."""
    rows = {}
    for key in seeds[0]["rows"]:
        name, budget = key.split("|")
        per_seed = [s["rows"][key] for s in seeds]
        rows[key] = {"allocator": name, "budget": int(budget),
                     "accuracy": summarise([r["correct"] for r in per_seed]),
                     "needle_tokens": summarise([r["needle_tokens"] for r in per_seed], proportion=False)}  # fmt: skip
    curve = {t: summarise([s["needle_curve"][t] for s in seeds]) for t in seeds[0]["needle_curve"]}
    sweep = {}
    for level in seeds[0]["sweep"]:
        sweep[level] = {"auroc": sum(s["sweep"][level]["auroc"] for s in seeds) / len(seeds)}
        for name in ("top-k", "ATA (released)"):
            sweep[level][name] = summarise([s["sweep"][level][name] for s in seeds])
    routing = {}
    for videos, scorers in seeds[0]["routing"].items():
        for k in scorers:
            values = [s["routing"][videos][k] for s in seeds]
            routing.setdefault(videos, {})[k] = {"mean": sum(values) / len(values), "seed_min": min(values),
                                                 "seed_max": max(values)}  # fmt: skip
    return {"rows": rows, "needle_curve": curve, "sweep": sweep, "routing": routing}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    commit = git_commit()  # the code that runs, before any results file is written
    start = time.perf_counter()
    seeds = run_seeds(args, [int(s) for s in args.seeds.split(",")])
    document = {
        "commit": commit,
        "command": shlex.join(
            ["python", "benchmarks/table2_router.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "args": vars(args),
        "seeds": seeds,
        "summary": aggregate(seeds),
        "wall_s": time.perf_counter() - start,
    }
    document["ordering"] = check_ordering(document)
    from tempo_kit.atomic import write_json, write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "table2.json", document, indent=1)
    text = markdown(document)
    print(text)
    if args.results:
        write_text(args.results, text)
        plot(document, Path(args.results).with_suffix(".png"))
        plot(document, Path(args.docs).parent / DOCS_PLOT)
        update_docs(Path(args.docs), document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
