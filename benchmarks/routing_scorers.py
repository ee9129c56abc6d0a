"""Is routing learned and question-conditioned? A trained router beside two scorers that cannot be.

    python benchmarks/routing_scorers.py --out outputs/routing_scorers \\
        --results benchmarks/results/routing_scorers_cpu.md

On multi-event videos (``make-synthetic --task events``: 2–3 equally bright striped shapes per
video, questions naming one shape, two, or all) the script trains ``recipes/router.yaml`` (and,
with ``--lora``, the same stage with LoRA adapters) from a tiny answer model, then reports held-out
AUROC of the relevance against the question's ``relevant_spans`` for:

* ``pixel saliency`` — each segment's mean colour saturation (max − min channel): finds every
  event, cannot know which one the question names;
* ``position only`` — closeness of the segment to the video's middle, where events are drawn;
* each trained router (its SVLM relevance under the routing prompt).

Mean per-video AUROC, per question kind and over all rows: on ``colours`` questions (one named event among others as
bright) only a question-conditioned score can beat pixel saliency.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from common import git_commit  # this script's folder is on sys.path when it runs

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("colours", "order", "count")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/routing_scorers", help="work folder")
    parser.add_argument("--results", default=None, help="markdown table to write")
    parser.add_argument("--train-videos", type=int, default=24)
    parser.add_argument("--test-videos", type=int, default=12)
    parser.add_argument("--duration", type=float, default=16.0, help="seconds per video (2 fps)")
    parser.add_argument("--size", default="32,32", help="H,W of the videos")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lora", action="store_true", help="also train router_lora.yaml (LoRA adapters)")
    parser.add_argument("--direction-lr", type=float, default=0.1, help="lr of w_Yes − w_No (router.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> dict[str, Path]:
    """Tiny checkpoints, a kit-format answer model (k_max 4) and the events train/test sets."""
    from tempo_kit.data.synthetic_events import make_events_dataset
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    out = Path(args.out)
    tiny = make_tiny(out / "tiny", seed=args.seed) if not (out / "tiny/llm/config.json").is_file() else {
        "svlm": out / "tiny/svlm", "llm": out / "tiny/llm"}  # fmt: skip
    base = out / "answer_model"
    if not (base / "tempo_config.json").is_file():
        torch.manual_seed(args.seed)
        TempoModel.from_config(
            {
                "compressor": {"name": "qwen3_vl", "pretrained": str(tiny["svlm"]), "k_max": 4},
                "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny["llm"])},
            }
        ).save_pretrained(base)
    common = {"duration": args.duration, "fps": 2.0, "events": (2, 3), "seed": args.seed,
              "size": tuple(int(v) for v in args.size.split(","))}  # fmt: skip
    paths = {"answer_model": base}
    for split, count in (("train", args.train_videos), ("test", args.test_videos)):
        path = out / "data" / f"{split}.jsonl"
        paths[split] = path if path.is_file() else make_events_dataset(out / "data", count, split=split, **common)
    return paths


def train_router(
    args: argparse.Namespace, paths: dict[str, Path], name: str, recipe: str, extra: list[str]
) -> tuple[Path, float | None]:
    from tempo_kit.quiet import quiet_library_messages
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import FINAL_DIR, run_recipe

    run_dir = Path(args.out) / name
    overrides = [
        f"run.init_from={paths['answer_model']}", "model.compressor.k_max=4", f"run.output_dir={run_dir}",
        f"run.seed={args.seed}",
        f"data.train_files={paths['train']}", "data.val_files=null",
        f"data.max_frames={int(round(args.duration * 2))}", "data.backend=pyav", "data.preprocessing=qwen3_vl",
        "data.num_workers=0", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.strategy.name=auto",
        "trainer.precision=32-true", "trainer.cpu_threads=1", "trainer.enable_progress_bar=false",
        "trainer.gradient_checkpointing.compressor=false", f"trainer.max_epochs={args.epochs}",
        "trainer.global_batch_size=4", "trainer.micro_batch_size=2", "optim.warmup_ratio=0.1", *extra,
    ]  # fmt: skip
    if (run_dir / FINAL_DIR / "tempo_config.json").is_file():
        return run_dir / FINAL_DIR, None  # trained by an earlier run into the same folder
    start = time.perf_counter()
    with quiet_library_messages():
        run_recipe(to_dict(load_recipe(ROOT / "recipes" / recipe, overrides)), "fit")
    return run_dir / FINAL_DIR, time.perf_counter() - start


def saturation(frames: torch.Tensor) -> torch.Tensor:
    """Mean (max − min channel) per segment of ``frames`` ``[S, T, H, W, 3]`` or ``[S, T, 3, H, W]``."""
    channel = -1 if frames.shape[-1] == 3 else 2
    values = frames.float()
    spread = values.amax(dim=channel) - values.amin(dim=channel)
    return spread.flatten(1).mean(dim=1)


def score(models: dict[str, Path], test_file: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Mean per-video AUROC per scorer, over all rows and per question kind.

    Per video, because an allocator only ranks the segments of one video: a score whose level
    shifts from video to video (a background's colour) ranks perfectly inside each video and
    badly when videos are pooled.
    """
    from tempo_kit.data.annotations import load_annotations
    from tempo_kit.evaluation.routing import ranking_scores, score_rows
    from tempo_kit.model import TempoModel
    from tempo_kit.video.reading import Sampling

    records = load_annotations(test_file, on_error="raise")
    kinds = {r.id: r.meta["category"] for r in records}
    scores: dict[str, dict[str, list[float]]] = {}

    def add(scorer: str, kind: str, relevance: torch.Tensor, labels: torch.Tensor) -> None:
        # into [0, 1], order kept: torchmetrics reads scores outside [0, 1] as logits and squashes
        # them with a sigmoid, which ties every saturation above ~20
        values = relevance.double()
        scaled = (values - values.min()) / (values.max() - values.min()).clamp_min(1e-12)
        auroc = ranking_scores(scaled.float(), labels.float())["auroc"]
        if auroc is None:  # every segment of one class: nothing to rank
            return
        for key in (kind, "all"):
            scores.setdefault(scorer, {}).setdefault(key, []).append(auroc)

    for name, model_dir in models.items():
        model = TempoModel.from_pretrained(model_dir).eval()
        sampling = Sampling.training(max_frames=int(round(args.duration * 2)), backend="pyav",
                                     preprocessing=model.config.preprocessing)  # fmt: skip
        with torch.no_grad():
            scored = score_rows(model.compressor, records, test_file.parent, sampling=sampling, keep_compressed=True)
        for video, sample, _ in scored:
            kind = kinds[video.id]
            add(name, kind, video.relevance, video.labels)
            if name == next(iter(models)):  # the pixel and position scorers once, on the same segments
                add("pixel saliency", kind, saturation(sample.segments.frames), video.labels)
                middle = float(video.times.max() + video.times.min()) / 2
                add("position only", kind, -(video.times.float() - middle).abs(), video.labels)
    out = {}
    for scorer, per_kind in scores.items():
        out[scorer] = {kind: sum(values) / len(values) for kind, values in per_kind.items()}
    return out


def markdown(doc: dict[str, Any]) -> str:
    columns = ["all", *KINDS]
    lines = [
        "# Routing on multi-event videos: trained router vs pixel saliency vs position",
        "",
        f"Commit `{doc['commit']}`. {doc['test_videos']} held-out videos ({doc['duration']:.0f} s at 2 fps, "
        f"2–3 striped shapes each, {doc['size']} frames), one question of each kind per video; AUROC of "
        "each score against the segments of the events the question names, per video, averaged.",
        "",
        "```bash",
        doc["command"],
        "```",
        "",
        "| scorer | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for scorer, per_kind in doc["auroc"].items():
        cells = ["n/a" if per_kind.get(c) is None else f"{per_kind[c]:.3f}" for c in columns]
        lines.append(f"| {scorer} | " + " | ".join(cells) + " |")
    times = ", ".join(
        f"{k} " + ("reused from an earlier run's folder" if v is None else f"{v:.0f} s")
        for k, v in doc["train_seconds"].items()
    )
    lines += ["", f"Router training ({doc['train_videos']} videos, {doc['epochs']} epochs), wall time on a shared "
              f"2-core machine: {times}.", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commit = git_commit()  # the code that runs, before any results file is written
    paths = prepare(args)
    runs = {"router.yaml (direction only)": ("direction", "router.yaml", [f"optim.lr.compressor={args.direction_lr}"])}
    if args.lora:
        runs["router_lora.yaml (LoRA r 8)"] = ("lora", "router_lora.yaml", [
            "optim.lr.compressor=2.0e-3", "lora.compressor.r=8", "lora.compressor.lora_alpha=16",
            "lora.compressor.lora_dropout=0"])  # fmt: skip
    models, seconds = {}, {}
    for name, (folder, recipe, extra) in runs.items():
        print(f"training {name}", flush=True)
        models[name], seconds[name] = train_router(args, paths, folder, recipe, extra)
    models["untrained relevance"] = paths["answer_model"]
    doc = {
        "commit": commit,
        "command": shlex.join(["python", "benchmarks/routing_scorers.py", *(argv or sys.argv[1:])]),
        "test_videos": args.test_videos, "train_videos": args.train_videos, "duration": args.duration,
        "size": args.size.replace(",", "x"), "epochs": args.epochs, "train_seconds": seconds,
        "auroc": score(models, paths["test"], args),
    }  # fmt: skip
    from tempo_kit.atomic import write_json, write_text

    write_json(Path(args.out) / "routing_scorers.json", doc, indent=1)
    if args.results:
        write_text(args.results, markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
