"""Loader throughput: prepared shards (``data.shards``) vs the annotation files, in one run.

Writes synthetic needle videos, prepares them twice (``bytes`` and ``frames`` payloads, timed),
then reads one epoch through each data module (the recipe's loader: collation, tokenizer, the
resumable sampler) with ``--workers`` DataLoader workers and reports samples per second and the
ratios to the file loader. Also reports, analytically at the real shapes, what a stage-3 feature
store would hold per sample (every segment's ``k_max`` projected memory embeddings, relevance,
time tags) in bf16 and fp8, beside the video's bytes (uint8 frames at the geometry, and the
encoded file at ``--video-mbps``).

    python benchmarks/bench_streaming.py --out benchmarks/results/streaming_cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from common import machine

#: Stage 3 at the real shapes (paper Table A; FACTS: Qwen3-4B hidden 2560, k_max 128).
STAGE3_FRAMES, TRAIN_WINDOW, K_MAX, D_LLM = 384, 4, 128, 2560
#: Frame size of a 16:9 video in the released geometry.
REAL_FRAME = (256, 512)


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return done.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def epoch_rate(dm) -> dict[str, float]:
    """Samples/s over one epoch after the first batch (worker start-up excluded)."""
    dm.datasets.pop("train", None)
    dm.setup("fit")
    loader = dm.train_dataloader()
    iterator = iter(loader)
    next(iterator)
    start, count = time.perf_counter(), 0
    for batch in iterator:
        count += len(batch)
    seconds = time.perf_counter() - start
    return {"samples": count, "seconds": round(seconds, 3), "samples_per_s": round(count / seconds, 2)}


def analytic_store() -> dict[str, float]:
    segments = STAGE3_FRAMES // TRAIN_WINDOW
    embeddings = segments * K_MAX * D_LLM
    extras = segments * (4 + 8)  # relevance float32 + time tag float64 per segment
    frames = STAGE3_FRAMES * REAL_FRAME[0] * REAL_FRAME[1] * 3
    return {"segments": segments, "bf16_bytes": embeddings * 2 + extras, "fp8_bytes": embeddings + extras,
            "uint8_frames_bytes": frames}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per loader; the median is reported")
    parser.add_argument("--video-mbps", type=float, default=2.0, help="encoded bitrate for the raw-video size (2: 720p H.264)")
    parser.add_argument("--out", help="results JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tempo_kit.data import TempoDataModule
    from tempo_kit.data.prepare import prepare_file
    from tempo_kit.data.synthetic import make_needle_dataset
    from tempo_kit.tiny.tokenizer import save_tokenizer

    root = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    rows = make_needle_dataset(root, args.videos, split="train", duration=args.duration, question_types=["mc"], seed=0)
    save_tokenizer(root / "tok")
    geometry = {"max_frames": 8, "max_long_edge": 64, "preprocessing": "qwen3_vl", "num_workers": args.workers}

    def module(**data):
        return TempoDataModule(tokenizer=str(root / "tok"), batch_size=1, seed=0, **geometry, **data)

    sampling = module(train_files=rows).sampling
    results: dict = {"commit": commit(), "machine": machine(), "videos": args.videos, "duration_s": args.duration}
    results["prepare"] = {}
    for payload in ("bytes", "frames"):
        start = time.perf_counter()
        index = prepare_file(rows, root / payload, sampling=sampling, payload=payload, shard_rows=8,
                             workers=args.workers, progress=False)  # fmt: skip
        results["prepare"][payload] = {"seconds": round(time.perf_counter() - start, 2), "bytes": index["counts"]["bytes"]}
    loaders = {
        "files": module(train_files=rows),
        "shards_bytes": module(shards=str(root / "bytes")),
        "shards_frames": module(shards=str(root / "frames"), shard_payload="frames"),
    }
    runs: dict[str, list] = {name: [] for name in loaders}
    for _ in range(args.repeats):  # interleaved, so a burst of load on a shared machine hits every loader
        for name, dm in loaders.items():
            runs[name].append(epoch_rate(dm))
    for name, rates in runs.items():
        results[name] = sorted(rates, key=lambda r: r["samples_per_s"])[len(rates) // 2] | {
            "all_samples_per_s": [r["samples_per_s"] for r in rates]
        }
    for payload in ("bytes", "frames"):
        results[f"ratio_shards_{payload}_vs_files"] = round(
            results[f"shards_{payload}"]["samples_per_s"] / results["files"]["samples_per_s"], 2
        )
    store = analytic_store()
    seconds = STAGE3_FRAMES / 2.0  # 384 frames at 2 fps; a longer video is capped at 384 frames
    store["encoded_video_bytes_192s"] = int(args.video_mbps * 1e6 / 8 * seconds)
    store["encoded_video_bytes_1h"] = int(args.video_mbps * 1e6 / 8 * 3600)
    results["stage3_store_per_sample_analytic"] = store
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
