"""Does the trained router follow the question? Routing AUROC where only the question tells the segment.

    python benchmarks/table2_routing.py --out outputs/table2_routing \\
        --results benchmarks/results/table2_routing_cpu.md

Held-out videos of :mod:`table2_task` where *every* segment shows a striped shape, one of them the
shape the question names: pixel saliency and position cannot find it by construction; a router
that reads the question can. Per seed the script trains the router stage of
:func:`table2_train.train_router` (segments scored under their own shape's question and another's;
no background segments) and reports the mean per-video AUROC against the asked segment of the
trained router, the untrained SVLM relevance, pixel saliency and position. It writes
``<out>/routing.json``, the markdown file (``--results``) and the routing section of
``docs/benchmarks.md`` (between its markers), naming the commit that ran.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch
from common import ROOT, git_commit  # this script's folder is on sys.path when it runs
from table2_eval import routing_scores
from table2_task import cache_pool, make_pool, splice
from table2_train import RouterSettings, train_router

DOCS_BEGIN = "<!-- table2_routing.py: begin (written by the script, do not edit) -->"
DOCS_END = "<!-- table2_routing.py: end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", default="outputs/table2_routing", help="work folder (tiny checkpoints, routing.json)")
    add("--results", default=None, help="markdown file to write (the docs section is rewritten too)")
    add("--docs", default=str(ROOT / "docs" / "benchmarks.md"), help="page whose routing section --results rewrites")
    add("--seeds", default="0", help="comma-separated seeds")
    add("--train-pool", type=int, default=200, help="training segments")
    add("--test-pool", type=int, default=48, help="held-out segments")
    add("--test-videos", type=int, default=60, help="held-out videos per seed")
    add("--segments", type=int, default=12, help="segments per video")
    add("--size", default="64,64", help="frame height,width")
    add("--router-steps", type=int, default=300)
    add("--router-batch", type=int, default=8)
    add("--router-lr", type=float, default=RouterSettings.lr)
    add("--router-direction-lr", type=float, default=RouterSettings.direction_lr)
    return parser.parse_args(argv)


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tiny = Path(args.out) / f"tiny_{seed}"
    paths = make_tiny(tiny, seed=seed) if not (tiny / "llm" / "config.json").is_file() else {
        "svlm": tiny / "svlm", "llm": tiny / "llm"}  # fmt: skip
    model = TempoModel.from_config({
        "compressor": {"name": "qwen3_vl", "pretrained": str(paths["svlm"]), "k_max": 16},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"])},
    }).eval()  # fmt: skip
    size = tuple(int(v) for v in args.size.split(","))
    train_pool = make_pool(args.train_pool, seed=seed, split="train", size=size, stripes=2)
    test_pool = make_pool(args.test_pool, seed=seed, split="test", size=size, stripes=2)
    untrained = cache_pool(model, test_pool)
    start = time.perf_counter()
    settings = RouterSettings(args.router_steps, args.router_batch, args.router_lr, args.router_direction_lr, "questions")
    losses = train_router(model, train_pool, settings, generator, progress=lambda t: print(f"[seed {seed}] {t}", flush=True))
    seconds = time.perf_counter() - start
    videos = splice(test_pool, args.test_videos, args.segments, generator, None)
    auroc = routing_scores(test_pool, cache_pool(model, test_pool), untrained, videos)
    print(f"[seed {seed}] " + ", ".join(f"{k} {v:.3f}" for k, v in auroc.items()), flush=True)
    return {"seed": seed, "auroc": auroc, "router_s": seconds, "loss": [losses[0], sum(losses[-20:]) / 20]}


def markdown(doc: dict, heading: bool = True) -> str:
    args, seeds = doc["args"], doc["seeds"]
    names = list(seeds[0]["auroc"])
    lines = ["# Routing that follows the question (Table 2 task, every segment a shape)", ""] if heading else []
    lines += [
        f"Commit `{doc['commit']}`. Seeds {args['seeds']}; {args['test_videos']} held-out videos per seed of "
        f"{args['segments']} segments, every segment one striped shape, one of them the shape the question names. "
        f"Router stage: {args['router_steps']} steps of {args['router_batch']} segments, each scored under its own "
        "shape's question and another's. Mean per-video AUROC against the asked segment:",
        "",
        "```bash",
        doc["command"],
        "```",
        "",
        "| scorer | " + " | ".join(f"seed {s['seed']}" for s in seeds) + " | mean |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for name in names:
        values = [s["auroc"][name] for s in seeds]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {sum(values) / len(values):.3f} |")
    mean_s = sum(s["router_s"] for s in seeds) / len(seeds)
    lines += ["", f"Router stage wall time per seed on a shared 2-core machine (other jobs running): {mean_s:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tempo_kit.atomic import write_json, write_text

    args = parse_args(argv)
    torch.set_num_threads(1)
    commit = git_commit()
    seeds = [run_seed(args, int(s)) for s in args.seeds.split(",")]
    doc = {"commit": commit, "args": vars(args), "seeds": seeds,
           "command": shlex.join(["python", "benchmarks/table2_routing.py", *(sys.argv[1:] if argv is None else argv)])}  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "routing.json", doc, indent=1)
    print(markdown(doc))
    if args.results:
        write_text(args.results, markdown(doc))
        page = Path(args.docs)
        text = page.read_text()
        if DOCS_BEGIN not in text or DOCS_END not in text:
            raise SystemExit(f"{page}: no routing section markers ({DOCS_BEGIN!r} … {DOCS_END!r}); add them first")
        head, rest = text.split(DOCS_BEGIN, 1)
        write_text(page, head + DOCS_BEGIN + "\n\n" + markdown(doc, heading=False) + "\n" + DOCS_END + rest.split(DOCS_END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
