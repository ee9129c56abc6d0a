"""Paper Table 2 (B: routing, C: reduction) on CPU, before and after the router stage.

    python benchmarks/table2_router.py --out outputs/table2 \\
        --results benchmarks/results/table2_router_cpu.md

Everything runs on the tiny checkpoints and synthetic needle videos (``make_needle_dataset``):

1. **answer stage** — ``recipes/demo.yaml`` (SVLM frozen; memory tokens, projector and LLM learn)
   on short needle videos (2 segments each, all ``k_max`` tokens, as the paper trains), or an
   exported one given by ``--answer-model`` (e.g. the demo's ``outputs/demo/final``);
2. **router stage** — ``recipes/router_lora.yaml`` from the answer stage's export, on long needle videos
   labelled by their ``relevant_spans``;
3. **evaluation** on held-out long videos (≥ 32 segments), for the answer-stage model (its SVLM's
   relevance untrained) and the router-stage model: allocators subsample (the paper's Uniform
   Subsampling) / uniform (even split) / random / adversarial / top-k / ATA (released, exact) with
   head reduction, and ATA released with tail and merge, at each
   budget. Per setting: answer accuracy (one-word colour answers, 8 colours: chance 12.5 %) and
   needle-token recall (share of the needle segments' ``k_max`` tokens that reach the LLM), with
   95 % bootstrap intervals over videos (torchmetrics ``BootStrapper``).

Writes ``<out>/table2.json``, the markdown table (``--results``) and a plot beside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from common import fit_recipe  # this script's folder is on sys.path when it runs

#: Table 2B's allocators (head reduction), in the paper's row order (its Uniform Subsampling is
#: ``subsample``; the kit's even split ``uniform`` beside it), then ATA's two modes.
ALLOCATORS: dict[str, dict[str, Any]] = {
    "subsample (paper's uniform)": {"name": "subsample"},
    "uniform (even split)": {"name": "uniform"},
    "random": {"name": "random"},
    "adversarial": {"name": "adversarial"},
    "top-k": {"name": "topk"},
    "ATA (released)": {"name": "ata", "mode": "released"},
    "ATA (exact)": {"name": "ata", "mode": "exact"},
}
#: Table 2C's reductions, under ATA (released).
REDUCTIONS = ("head", "tail", "merge")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/table2", help="work folder (checkpoints, videos, runs)")
    parser.add_argument(
        "--results", default=None, help="markdown table to write (a .png plot goes beside it)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data, the training and the bootstrap"
    )
    parser.add_argument("--answer-videos", type=int, default=512, help="short videos for the answer stage")
    parser.add_argument(
        "--answer-val-videos", type=int, default=64, help="held-out short videos (its accuracy)"
    )
    parser.add_argument("--answer-duration", type=float, default=12.0, help="seconds per answer-stage video")
    parser.add_argument(
        "--answer-needle-duration", type=float, default=6.0, help="needle seconds, short videos"
    )
    parser.add_argument(
        "--answer-max-frames",
        type=int,
        default=8,
        help="frames per answer-stage video (8: 2 segments, as the demo)",
    )
    parser.add_argument("--answer-epochs", type=int, default=6)
    parser.add_argument(
        "--answer-model",
        default=None,
        help="an exported answer-stage model to start from instead of training one (e.g. the demo's "
        "outputs/demo/final; its k_max and frame size must match)",
    )
    parser.add_argument("--router-videos", type=int, default=48, help="long videos for the router stage")
    parser.add_argument("--router-epochs", type=int, default=4)
    parser.add_argument("--test-videos", type=int, default=64, help="held-out long videos")
    parser.add_argument(
        "--duration", type=float, default=64.0, help="seconds per long video (2 fps, 4-frame segments)"
    )
    parser.add_argument("--needle-duration", type=float, default=4.0)
    parser.add_argument(
        "--size", default="48,64", help="frame height,width of every video (the demo's videos: 96,128)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=2.0,
        help="source frame rate of every video (2: the sampling rate, all frames used)",
    )
    parser.add_argument("--k-max", type=int, default=16, help="memory tokens per segment")
    parser.add_argument("--k-min", type=int, default=4, help="ATA's anchor (paper: 4)")
    parser.add_argument("--budgets", default="160,256", help="comma-separated visual-token budgets per video")
    parser.add_argument("--bootstraps", type=int, default=1000)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=8,
        help="reply length (colour names take up to 4+ tiny-tokenizer tokens)",
    )
    parser.add_argument(
        "--override", action="append", default=[], help="router-stage recipe override (repeatable)"
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------- data


def prepare(args: argparse.Namespace) -> dict[str, Path]:
    """Tiny checkpoints and the three needle sets (colour questions, open one-word answers)."""
    from tempo_kit.data.synthetic import make_needle_dataset
    from tempo_kit.tiny import make_tiny

    out = Path(args.out)
    tiny = out / "tiny"
    paths = (
        {"svlm": tiny / "svlm", "llm": tiny / "llm"}
        if (tiny / "llm" / "config.json").is_file()
        else make_tiny(tiny, seed=args.seed)
    )
    common = {
        "fps": args.fps,
        "size": tuple(int(v) for v in args.size.split(",")),
        "categories": ("colour",),
        "question_types": ("open",),
        "seed": args.seed,
    }
    short = (args.answer_duration, args.answer_needle_duration)
    long = (args.duration, args.needle_duration)
    sets = {
        "answer": (out / "answer_data", args.answer_videos, "train", *short),
        "answer_val": (out / "answer_data", args.answer_val_videos, "val", *short),
        "router": (out / "router_data", args.router_videos, "train", *long),
        "test": (out / "router_data", args.test_videos, "test", *long),
    }
    if args.answer_model:  # the answer stage is not trained here
        del sets["answer"], sets["answer_val"]
    for name, (folder, count, split, duration, needle) in sets.items():
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            make_needle_dataset(
                folder, count, split=split, duration=duration, needle_duration=needle, **common
            )
        paths[name] = path
    return paths


# ---------------------------------------------------------------------------------- training


def common_overrides(paths: dict[str, Path], out: Path, seed: int) -> list[str]:
    return [
        f"model.compressor.pretrained={paths['svlm']}",
        f"model.decoder.pretrained={paths['llm']}",
        f"run.output_dir={out}",
        f"run.seed={seed}",
        "data.backend=pyav",
        # Qwen3-VL's own frame geometry (the mode for models trained from scratch): the released
        # chain upscales every frame to ≥ 131072 pixels, ~10x the SVLM work of these 48x64 frames
        "data.preprocessing=qwen3_vl",
        "data.num_workers=1",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.strategy.name=auto",
        "trainer.precision=32-true",
        "trainer.cpu_threads=1",
        "trainer.enable_progress_bar=false",
        "trainer.gradient_checkpointing.compressor=false",
        "trainer.gradient_checkpointing.decoder=false",
    ]


def train(args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, Any]:
    out = Path(args.out)
    answer_dir, router_dir = out / "answer", out / "router"
    answer_model = Path(args.answer_model) if args.answer_model else answer_dir / "final"
    answer = [f"(not trained here: {answer_model})"]
    if not args.answer_model:
        answer = [
            *common_overrides(paths, answer_dir, args.seed),
            f"model.compressor.k_max={args.k_max}",
            f"data.train_files={paths['answer']}",
            f"data.val_files={paths['answer_val']}",  # scored once, after the last epoch
            f"data.max_frames={args.answer_max_frames}",
            f"trainer.max_epochs={args.answer_epochs}",
            f"trainer.check_val_every_n_epoch={args.answer_epochs}",
            f"validation.max_new_tokens={args.max_new_tokens}",
        ]
    router = [
        *common_overrides(paths, router_dir, args.seed),
        f"run.init_from={answer_model}",
        f"model.compressor.k_max={args.k_max}",  # as saved by the answer stage
        f"data.train_files={paths['router']}",
        "data.val_files=null",
        f"data.max_frames={int(round(args.duration * 2))}",
        f"trainer.max_epochs={args.router_epochs}",
        "trainer.global_batch_size=4",
        "trainer.micro_batch_size=2",
        "trainer.log_every_n_steps=4",
        "lora.compressor.r=8",
        "lora.compressor.lora_alpha=16",
        "lora.compressor.lora_dropout=0",
        "optim.lr.compressor=2.0e-3",
        "optim.warmup_ratio=0.1",
        *args.override,
    ]
    times = {}
    if not args.answer_model and not (answer_dir / "final" / "tempo_config.json").is_file():
        times["answer_stage_s"] = fit_recipe("demo.yaml", answer)
    if not (router_dir / "final" / "tempo_config.json").is_file():
        times["router_stage_s"] = fit_recipe("router_lora.yaml", router)
    return {"answer_overrides": answer, "router_overrides": router, "answer_model": answer_model, **times}


def last_validation(run_dir: Path) -> dict[str, float]:
    """The last validation metrics a run logged (its ``metrics.jsonl``)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next((r for r in reversed(rows) if any(k.startswith("val/") for k in r)), {})


# -------------------------------------------------------------------------------- evaluation


def bootstrap(values: list[float], resamples: int, seed: int) -> dict[str, float]:
    """Mean and 95 % percentile interval over resampled videos."""
    from torchmetrics.aggregation import MeanMetric
    from torchmetrics.wrappers import BootStrapper

    torch.manual_seed(seed)
    metric = BootStrapper(
        MeanMetric(),
        num_bootstraps=resamples,
        quantile=torch.tensor([0.025, 0.975]),
        sampling_strategy="multinomial",
    )
    metric.update(torch.tensor(values, dtype=torch.float64))
    low, high = metric.compute()["quantile"].tolist()
    return {"mean": sum(values) / len(values), "low": low, "high": high}


@torch.no_grad()
def evaluate(
    model_dir: Path, test_file: Path, budgets: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """Every (allocator, reduction, budget) on every test video, memory compressed once per video."""
    from tempo_kit.data.annotations import load_annotations
    from tempo_kit.evaluation.routing import allocation_stats, ranking_scores, score_rows
    from tempo_kit.model import TempoModel
    from tempo_kit.model.inference_batch import inference_batch
    from tempo_kit.training.module import normalise_answer
    from tempo_kit.video.reading import Sampling

    model = TempoModel.from_pretrained(model_dir).eval()
    k_max = int(model.compressor.k_max)
    records = load_annotations(test_file, on_error="raise")
    scored = score_rows(
        model.compressor,
        records,
        test_file.parent,
        sampling=Sampling.training(
            max_frames=int(round(args.duration * 2)),
            backend="pyav",
            preprocessing=model.config.preprocessing,  # what the model was trained with
        ),
        keep_compressed=True,
    )
    settings = [(name, spec, "head") for name, spec in ALLOCATORS.items()]
    settings += [("ATA (released)", ALLOCATORS["ATA (released)"], r) for r in REDUCTIONS if r != "head"]
    correct: dict[str, list[float]] = {}
    recall: dict[str, list[float]] = {}
    for video, sample, compressed in scored:
        batch = inference_batch(model.tokenizer, [sample.segments], [sample.question], ids=[video.id])
        for budget in budgets:
            for name, spec, reduction in settings:
                key = f"{name}|{reduction}|{budget}"
                out = model.generate(
                    batch,
                    budget=budget,
                    k_min=args.k_min,
                    reduction=reduction,
                    allocator=spec,
                    compressed=compressed,
                    max_new_tokens=args.max_new_tokens,
                )
                hit = normalise_answer(out.texts[0]) == normalise_answer(sample.answer)
                stats = allocation_stats(out.allocations[0].counts, video.labels, k_max, max(1, k_max // 2))
                correct.setdefault(key, []).append(float(hit))
                recall.setdefault(key, []).append(stats["needle_recall"])
        full = f"all tokens|head|{k_max * len(video.labels)}"
        out = model.generate(
            batch,
            budget=k_max * len(video.labels),
            allocator="uniform",
            compressed=compressed,
            max_new_tokens=args.max_new_tokens,
        )
        correct.setdefault(full, []).append(
            float(normalise_answer(out.texts[0]) == normalise_answer(sample.answer))
        )
        recall.setdefault(full, []).append(1.0)
    ranking = ranking_scores(
        torch.cat([v.relevance for v, _, _ in scored]), torch.cat([v.labels for v, _, _ in scored])
    )
    rows = []
    for key in correct:
        name, reduction, budget = key.split("|")
        rows.append(
            {
                "allocator": name,
                "reduction": reduction,
                "budget": int(budget),
                "accuracy": bootstrap(correct[key], args.bootstraps, args.seed),
                "needle_recall": bootstrap(recall[key], args.bootstraps, args.seed),
            }
        )
    segments = len(scored[0][0].labels) if scored else 0
    return {"videos": len(scored), "segments_per_video": segments, "k_max": k_max, **ranking, "rows": rows}


# ---------------------------------------------------------------------------------- reports


def _cell(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def markdown(document: dict[str, Any]) -> str:
    lines = [
        "# Table 2 on CPU: routing and reduction before and after the router stage",
        "",
        "Tiny random-initialised Qwen3-VL / Qwen3 checkpoints, synthetic needle videos (a coloured shape",
        f"for {document['args']['needle_duration']:g} s in a {document['args']['duration']:g}-s video; "
        "'What colour was the shape?', 8 colours, chance 12.5 %).",
        "Accuracy = exact one-word answer; needle recall = share of the needle segments' k_max memory",
        "tokens that reach the LLM. Brackets: 95 % bootstrap interval over videos.",
        "",
        "```bash",
        document["command"],
        "```",
        "",
    ]
    val = document.get("answer_validation", {})
    if "val/open_accuracy" in val:
        args = document["args"]
        lines += [
            f"Answer stage on {int(val['val/open_scored'])} held-out short videos ({args['answer_duration']:g} s, "
            f"needle {args['answer_needle_duration']:g} s, {args['answer_max_frames']} frames = "
            f"{args['answer_max_frames'] // 4} segments, all k_max tokens): accuracy {val['val/open_accuracy']:.3f}, "
            f"loss {val['val/loss']:.3f}.",
            "",
        ]
    for stage, label in (
        ("answer", "answer stage only (untrained relevance)"),
        ("router", "after the router stage"),
    ):
        result = document["results"][stage]
        auroc = "n/a" if result["auroc"] is None else f"{result['auroc']:.3f}"
        ap = "n/a" if result["average_precision"] is None else f"{result['average_precision']:.3f}"
        lines += [
            f"## {label}",
            "",
            f"{result['videos']} test videos × {result['segments_per_video']} segments, k_max {result['k_max']}, "
            f"k_min {document['args']['k_min']}; relevance vs needle segments: AUROC {auroc}, AP {ap}.",
            "",
            "| allocator | reduction | budget | accuracy | needle recall |",
            "|---|---|---|---|---|",
        ]
        for row in result["rows"]:
            lines.append(
                f"| {row['allocator']} | {row['reduction']} | {row['budget']} | {_cell(row['accuracy'])} | "
                f"{_cell(row['needle_recall'])} |"
            )
        lines.append("")
    timing = document["timing"]
    lines += [
        "Wall time on this machine (2 cores shared with other jobs): "
        + ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s" for k, v in timing.items())
        + " (cpu = CPU seconds of the script and its data workers).",
        "",
    ]
    return "\n".join(lines)


def plot(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    budgets = document["args"]["budgets"]
    fig, axes = plt.subplots(2, len(budgets), figsize=(4.2 * len(budgets), 6.4), squeeze=False, sharey="row")
    for column, budget in enumerate(budgets):
        for row_index, metric in enumerate(("needle_recall", "accuracy")):
            ax = axes[row_index][column]
            names = list(ALLOCATORS)
            for offset, (stage, colour) in enumerate((("answer", "#b0b0b0"), ("router", "#1f5fa8"))):
                rows = {
                    r["allocator"]: r[metric]
                    for r in document["results"][stage]["rows"]
                    if r["budget"] == budget and r["reduction"] == "head"
                }
                xs = [i + (offset - 0.5) * 0.38 for i in range(len(names))]
                means = [rows[n]["mean"] for n in names]
                errors = [
                    [rows[n]["mean"] - rows[n]["low"] for n in names],
                    [rows[n]["high"] - rows[n]["mean"] for n in names],
                ]
                label = "untrained relevance" if stage == "answer" else "after router stage"
                ax.bar(xs, means, width=0.38, color=colour, yerr=errors, capsize=2, label=label)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
            ax.set_title(f"budget {budget}: {metric.replace('_', ' ')}", fontsize=9)
            ax.set_ylim(0, 1.05)
    axes[0][0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    paths = prepare(args)
    timing = {"data_s": time.perf_counter() - start}
    trained = train(args, paths)
    timing.update({k: v for k, v in trained.items() if k.endswith("_s")})
    budgets = [int(b) for b in args.budgets.split(",")]
    results = {}
    answer_val = {} if args.answer_model else last_validation(Path(args.out) / "answer")
    models = {"answer": trained["answer_model"], "router": Path(args.out) / "router" / "final"}
    for stage in ("answer", "router"):
        begin = time.perf_counter()
        results[stage] = evaluate(models[stage], paths["test"], budgets, args)
        timing[f"evaluation_{stage}_s"] = time.perf_counter() - begin
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    timing["total_s"] = time.perf_counter() - start
    timing["cpu_s"] = sum(u.ru_utime + u.ru_stime for u in usage)  # all processes: contention-free cost
    document = {
        "command": shlex.join(
            ["python", "benchmarks/table2_router.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "args": {**vars(args), "budgets": budgets},
        "answer_validation": answer_val,
        "results": results,
        "timing": timing,
        "recipes": {k: v for k, v in trained.items() if k.endswith("overrides")},
    }
    out = Path(args.out)
    (out / "table2.json").write_text(json.dumps(document, indent=2) + "\n")
    text = markdown(document)
    print(text)
    if args.results:
        results_path = Path(args.results)
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(text)
        plot(document, results_path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
