"""Overlapped inference benchmark: decode ahead of the compressor vs the serial pipeline, on CPU.

For each frame count, a synthetic H.264 video with exactly that many frames at 2 fps (so every
frame is sampled) is answered by ``TempoPipeline.answer`` on tiny checkpoints, serially
(decode the whole video, then compress) and with ``overlap=True`` (a background thread decodes
the next chunks while the compressor works). Each run is a fresh process, after one warm-up
question on a short clip; the script reports the answer time, the per-phase timings, the peak
RSS (the process's maximum resident set, model and libraries included) and whether both modes
gave the same answer and allocation.

    python benchmarks/bench_overlap.py --out benchmarks/results/overlap_cpu.md
    python benchmarks/bench_overlap.py --frames 64 --out /tmp/overlap.md   # quick check
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
import torch
torch.set_num_threads(args["threads"])
from tempo_kit.inference.api import TempoPipeline

pipe = TempoPipeline.from_pretrained(args["model"])
asked = {"query": "What colour was the shape?", "max_new_tokens": 4,
         "sampling": {"preprocessing": args["preprocessing"], "backend": args["backend"],
                      "max_frames": args["max_frames"]}}
pipe.answer(video=args["warmup"], overlap=args["overlap"], **asked)  # first-call costs out of the timing
start = time.perf_counter()
result = pipe.answer(video=args["video"], overlap=args["overlap"], **asked)
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "answer": result.answer,
    "counts": result.allocation.counts.tolist(),
    "frames": result.num_frames,
    "timings": {k: round(v, 3) for k, v in result.timings.items()},
}))
"""


def prepare(folder: Path, frame_counts: list[int], size: tuple[int, int]) -> tuple[Path, dict[int, Path], Path]:
    """Tiny model folder, one counter video per frame count, and a short warm-up clip (cached)."""
    from tempo_kit.data.synthetic import write_counter_video
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model"
    if not (model / "tempo_config.json").is_file():
        paths = make_tiny(folder / "tiny", seed=0)
        spec = {
            "compressor": {"name": "qwen3_vl", "pretrained": str(paths["svlm"]), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"])},
            "budget": 256,
        }
        TempoModel.from_config(spec).save_pretrained(model)
    videos = {}
    for count in [*frame_counts, 16]:
        path = folder / f"counter_{count}_{size[0]}x{size[1]}.mp4"
        if not path.is_file():
            write_counter_video(path, count, 2.0, size=size)
        videos[count] = path
    return model, {n: videos[n] for n in frame_counts}, videos[16]


def run(model: Path, video: Path, warmup: Path, overlap: bool, args: argparse.Namespace) -> dict:
    args = {
        "model": str(model),
        "video": str(video),
        "warmup": str(warmup),
        "overlap": overlap,
        "preprocessing": args.preprocessing,
        "backend": args.backend,
        "max_frames": args.max_frames,
        "threads": args.threads,
    }
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(rows: list[dict], args: argparse.Namespace, command: str) -> str:
    gib = 2**30
    lines = [
        "# Overlapped inference (CPU, tiny checkpoints)",
        "",
        "`TempoPipeline.answer` on a synthetic H.264 video with exactly N frames at 2 fps (every frame",
        f"sampled), {args.width} × {args.height}, `preprocessing={args.preprocessing}`, "
        f"`backend={args.backend}`: serial (decode the",
        "whole video, then compress) against `overlap=True` (a background thread decodes the next chunks",
        "while the compressor works). Fresh process per run, one warm-up question first; peak RSS is the",
        "process's maximum resident set (model and libraries included).",
        "",
        f"Machine: {platform.machine()}, {args.cpus} CPU cores shared with other jobs, torch threads "
        f"{args.threads}, Python {platform.python_version()}.",
        "",
        "```",
        command,
        "```",
        "",
        "| frames | serial (s) | overlapped (s) | speed-up | serial peak RSS (GiB) | overlapped peak RSS (GiB) "
        "| same answer and allocation | serial phases (s) | overlapped phases (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        serial, overlapped = row["serial"], row["overlapped"]
        same = serial["answer"] == overlapped["answer"] and serial["counts"] == overlapped["counts"]

        def phases(run: dict) -> str:
            return ", ".join(f"{k} {v:.2f}" for k, v in run["timings"].items() if k != "total")

        lines.append(
            f"| {row['frames']} | {serial['seconds']:.2f} | {overlapped['seconds']:.2f} "
            f"| {serial['seconds'] / overlapped['seconds']:.2f}× | {serial['peak_rss'] / gib:.2f} "
            f"| {overlapped['peak_rss'] / gib:.2f} | {'yes' if same else 'NO'} | {phases(serial)} "
            f"| {phases(overlapped)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[64, 256, 1024], help="frame counts")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--preprocessing", default="released", choices=["released", "qwen3_vl"])
    parser.add_argument("--backend", default="decord", help="video backend (decord, pyav)")
    parser.add_argument("--max-frames", type=int, default=2048, help="sampling cap (above the largest count)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--cache", default="outputs/bench_overlap", help="tiny model and videos (written once)")
    parser.add_argument("--out", help="write the Markdown table here")
    parser.add_argument("--json", help="also write the raw results as JSON here")
    args = parser.parse_args()
    args.cpus = os.cpu_count()
    command = "python benchmarks/bench_overlap.py " + " ".join(sys.argv[1:])
    model, videos, warmup = prepare(Path(args.cache), args.frames, (args.height, args.width))
    rows = []
    for count, video in videos.items():
        tick = time.perf_counter()
        serial = run(model, video, warmup, False, args)
        overlapped = run(model, video, warmup, True, args)
        rows.append({"frames": count, "serial": serial, "overlapped": overlapped})
        print(f"{count} frames: serial {serial['seconds']:.2f} s, overlapped {overlapped['seconds']:.2f} s "
              f"({time.perf_counter() - tick:.0f} s)", flush=True)
    text = report(rows, args, command)
    print(text)
    if args.out:
        from tempo_kit.atomic import write_text

        write_text(args.out, text)
    if args.json:
        from tempo_kit.atomic import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
