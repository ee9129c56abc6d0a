"""Which router stage keeps the answers? Three ways to train relevance, measured on one answer model.

    python benchmarks/router_stage_options.py --answer-model outputs/demo/final \\
        --answer-rows outputs/synthetic/val.jsonl --results benchmarks/results/router_options_cpu.md

The router stage (``recipes/router.yaml``, ``recipes/router_lora.yaml``) teaches the SVLM's relevance score
``σ((w_Yes − w_No)·h)`` where the answer is. How it trains decides whether the memory tokens the
LLM reads move under the LLM's feet. Each option starts from the same exported answer model and
trains on the same long needle videos (labelled by ``relevant_spans``):

* ``lora`` — ``router_lora.yaml``: LoRA adapters on the SVLM's language model, relevance loss
  only (the LLM frozen and never run);
* ``lora + answer loss`` — the same adapters, plus the answer loss through the frozen LLM;
* ``direction only`` — ``router.yaml``: the SVLM stays frozen; only ``w_Yes − w_No`` trains. The memory tokens
  cannot change, so neither can any answer at a given allocation.

Per option: held-out routing AUROC (``val/auroc`` on unseen long videos) and the answer accuracy on
``--answer-rows`` at all tokens, before and after, with the share of answers that changed.
Writes ``<out>/router_options.json`` and the markdown table (``--results``), naming the commit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from common import fit_recipe, git_commit  # this script's folder is on sys.path when it runs

#: Each option's recipe and its overrides.
OPTIONS: dict[str, tuple[str, list[str]]] = {
    "lora": ("router_lora.yaml", ["router.answer_weight=0"]),
    "lora + answer loss": ("router_lora.yaml", ["router.answer_weight=1.0"]),
    "direction only": ("router.yaml", ["router.answer_weight=0"]),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answer-model", required=True, help="exported answer-stage model (kit format)")
    parser.add_argument("--answer-rows", required=True, help="annotation file the answer model is scored on")
    parser.add_argument("--k-max", type=int, default=16, help="the answer model's k_max (demo: 16)")
    parser.add_argument("--answer-limit", type=int, default=None, help="score only the first N rows")
    parser.add_argument("--answer-max-frames", type=int, default=8, help="frames per answer video (demo: 8)")
    parser.add_argument("--out", default="outputs/router_options", help="work folder")
    parser.add_argument("--results", default=None, help="markdown table to write")
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--router-videos", type=int, default=32, help="long videos the router stage trains on")
    parser.add_argument("--test-videos", type=int, default=16, help="held-out long videos for the AUROC")
    parser.add_argument("--duration", type=float, default=24.0, help="seconds per long video (2 fps)")
    parser.add_argument("--needle-duration", type=float, default=4.0, help="needle seconds in a long video")
    parser.add_argument("--size", default="96,128", help="H,W of the long videos (the answer model's)")
    parser.add_argument("--epochs", type=int, default=3, help="router-stage epochs")
    parser.add_argument("--direction-lr", type=float, default=1.0e-2, help="lr of w_Yes − w_No alone")
    parser.add_argument("--lora-lr", type=float, default=2.0e-3, help="lr of the LoRA adapters")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def router_data(args: argparse.Namespace) -> dict[str, Path]:
    from tempo_kit.data.synthetic import make_needle_dataset

    folder = Path(args.out) / "router_data"
    common = {"duration": args.duration, "fps": 2.0, "needle_duration": args.needle_duration,
              "size": tuple(int(v) for v in args.size.split(",")), "categories": ("colour",),
              "question_types": ("open",), "seed": args.seed}  # fmt: skip
    paths = {}
    for split, count in (("train", args.router_videos), ("test", args.test_videos)):
        path = folder / f"{split}.jsonl"
        paths[split] = path if path.is_file() else make_needle_dataset(folder, count, split=split, **common)
    return paths


def overrides(args: argparse.Namespace, option: str, data: dict[str, Path], out: Path) -> list[str]:
    lr = args.direction_lr if option == "direction only" else args.lora_lr
    return [
        f"run.init_from={args.answer_model}",
        f"model.compressor.k_max={args.k_max}",  # as the answer model was built
        f"run.output_dir={out}",
        f"run.seed={args.seed}",
        f"data.train_files={data['train']}",
        f"data.val_files={data['test']}",
        f"data.max_frames={int(round(args.duration * 2))}",
        "data.backend=pyav",
        "data.preprocessing=qwen3_vl",
        "data.num_workers=0",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.strategy.name=auto",
        "trainer.precision=32-true",
        "trainer.cpu_threads=1",
        "trainer.enable_progress_bar=false",
        "trainer.gradient_checkpointing.compressor=false",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.check_val_every_n_epoch={args.epochs}",
        "trainer.global_batch_size=4",
        "trainer.micro_batch_size=2",
        "lora.compressor.r=8",
        "lora.compressor.lora_alpha=16",
        "lora.compressor.lora_dropout=0",
        f"optim.lr.compressor={lr}",
        "optim.warmup_ratio=0.1",
        *OPTIONS[option][1],
    ]


def last_auroc(run_dir: Path) -> float | None:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next((r["val/auroc"] for r in reversed(rows) if "val/auroc" in r), None)


def answers(model_dir: Path, rows_file: Path, max_frames: int, limit: int | None) -> list[tuple[str, str]]:
    """``(answer given, answer key)`` per row, all tokens, through the public pipeline."""
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.training.scoring import normalise_answer  # what the demo's validation accuracy uses

    pipe = TempoPipeline.from_pretrained(model_dir)
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()][:limit]
    out = []
    for row in rows:
        result = pipe.answer(rows_file.parent / row["video"], row["question"], budget=100_000, allocator="uniform",
                             window=4, max_frames=max_frames, backend="pyav", max_new_tokens=8)  # fmt: skip
        out.append((normalise_answer(result.answer), normalise_answer(str(row["answer"]))))
    return out


def accuracy(pairs: list[tuple[str, str]]) -> float:
    return sum(given == key for given, key in pairs) / len(pairs)


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Router stage options: relevance learned vs answers kept",
        "",
        f"Commit `{doc['commit']}`. Answer model `{doc['answer_model']}` scored on `{doc['answer_rows']}` "
        f"({doc['answer_count']} rows, all tokens): accuracy **{doc['before']:.3f}** before the router stage.",
        f"Router stage: {doc['router_videos']} long needle videos ({doc['duration']:.0f} s, 2 fps), "
        f"{doc['epochs']} epochs; AUROC on {doc['test_videos']} held-out long videos.",
        "",
        "```bash",
        doc["command"],
        "```",
        "",
        "| option | held-out AUROC | answer accuracy after | answers changed | router stage (s) |",
        "|---|---|---|---|---|",
    ]
    for name, r in doc["options"].items():
        auroc = "n/a" if r["auroc"] is None else f"{r['auroc']:.3f}"
        lines.append(f"| {name} | {auroc} | {r['accuracy']:.3f} | {r['changed']:.3f} | {r['seconds']:.0f} |")
    lines += ["", "Wall times on a shared 2-core machine: compare within this table only.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commit = git_commit()  # the code that runs, before any results file is written
    out = Path(args.out)
    data = router_data(args)
    rows_file = Path(args.answer_rows)
    print("scoring the answer model before any router stage", flush=True)
    before = answers(Path(args.answer_model), rows_file, args.answer_max_frames, args.answer_limit)
    doc: dict[str, Any] = {
        "commit": commit,
        "command": shlex.join(["python", "benchmarks/router_stage_options.py", *(argv or sys.argv[1:])]),
        "answer_model": args.answer_model, "answer_rows": args.answer_rows, "answer_count": len(before),
        "before": accuracy(before), "router_videos": args.router_videos, "test_videos": args.test_videos,
        "duration": args.duration, "epochs": args.epochs, "options": {},
    }  # fmt: skip
    for option in args.options:
        run_dir = out / option.replace(" ", "_").replace("+", "and")
        print(f"router stage: {option}", flush=True)
        seconds = fit_recipe(OPTIONS[option][0], overrides(args, option, data, run_dir))
        after = answers(run_dir / "final", rows_file, args.answer_max_frames, args.answer_limit)
        changed = sum(a[0] != b[0] for a, b in zip(after, before, strict=True)) / len(before)
        doc["options"][option] = {"auroc": last_auroc(run_dir), "accuracy": accuracy(after),
                                  "changed": changed, "seconds": seconds}  # fmt: skip
        print(json.dumps({option: doc["options"][option]}), flush=True)
    from tempo_kit.atomic import write_json, write_text

    write_json(out / "router_options.json", doc, indent=1)
    if args.results:
        write_text(args.results, markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
