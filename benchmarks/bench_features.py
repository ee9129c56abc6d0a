"""Stage-3 training throughput: from a feature store (``data.features``) vs from the videos, in one run.

Builds tiny real checkpoints and a tiny stage-2 export, writes synthetic needle videos, prepares
a feature store from them (``prepare --features``, timed: the one-off cost), then trains stage 3
(LLM full, compressor/memory/projector frozen; AdamW; forward, backward, step) for one epoch from
each data module with ``--workers`` DataLoader workers, interleaved ``--repeats`` times, and
reports the median training samples per second and the ratio. The video path decodes and runs
the frozen SVLM every step; the store path loads the decoder alone and reads the stored
projected memory. Also reports the store's bytes per sample at the real stage-3 shapes
(analytic), beside the video's.

    python benchmarks/bench_features.py --videos 24 --max-long-edge 384 --max-frames 64 --duration 32 \
        --out benchmarks/results/features_cpu_384px.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from common import git_commit, machine, write_json

#: Stage 3 at the real shapes (paper Table A; FACTS: Qwen3-4B hidden 2560, k_max 128, 384 frames, window 4).
STAGE3_FRAMES, TRAIN_WINDOW, K_MAX, D_LLM = 384, 4, 128, 2560
#: Frame size of a 16:9 video in the released geometry.
REAL_FRAME = (256, 512)
STAGE3 = {"compressor": "frozen", "memory_tokens": "frozen", "projector": "frozen", "decoder": "full"}


def analytic_store(video_mbps: float) -> dict[str, float]:
    """Bytes per sample of the store at the real shapes: S·k_max·d_llm values, relevance, time tags."""
    segments = STAGE3_FRAMES // TRAIN_WINDOW
    values = segments * K_MAX * D_LLM
    extras = segments * (4 + 8)  # relevance float32 + time tag float64 per segment
    return {
        "segments": segments,
        "fp32_bytes": values * 4 + extras,
        "bf16_bytes": values * 2 + extras,
        "fp8_bytes_not_offered": values + extras,
        "uint8_frames_bytes": STAGE3_FRAMES * REAL_FRAME[0] * REAL_FRAME[1] * 3,
        "encoded_video_bytes_192s": int(video_mbps * 1e6 / 8 * STAGE3_FRAMES / 2.0),
    }


def train_epoch(model, dm) -> dict[str, float]:
    """Training samples/s over one epoch after the first step (worker start-up excluded)."""
    from tempo_kit.training.trainability import apply_trainability

    apply_trainability(model, STAGE3)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    dm.datasets.pop("train", None)
    dm.setup("fit")
    start, count = None, 0
    for batch in dm.train_dataloader():
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
        if start is None:
            start = time.perf_counter()
        else:
            count += len(batch)
    seconds = time.perf_counter() - start
    return {"samples": count, "seconds": round(seconds, 3), "samples_per_s": round(count / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--max-frames", type=int, default=16)
    parser.add_argument("--max-long-edge", type=int, default=64, help="frame size: the SVLM's share of a step grows with it")
    parser.add_argument("--k-max", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per path; the median is reported")
    parser.add_argument("--feature-dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--video-mbps", type=float, default=2.0, help="encoded bitrate for the raw-video size")
    parser.add_argument("--out", help="results JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tempo_kit.data import TempoDataModule
    from tempo_kit.data.feature_prepare import feature_settings
    from tempo_kit.data.prepare import prepare_file
    from tempo_kit.data.synthetic import make_needle_dataset
    from tempo_kit.model import TempoModel
    from tempo_kit.model.stored import stored_features_model
    from tempo_kit.tiny import make_tiny

    root = Path(tempfile.mkdtemp(prefix="bench-features-"))
    checkpoints = make_tiny(root / "checkpoints", seed=0)
    model_dir = TempoModel.from_config({
        "compressor": {"name": "qwen3_vl", "pretrained": str(checkpoints["svlm"]), "k_max": args.k_max},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(checkpoints["llm"])},
    }).save_pretrained(root / "stage2")  # fmt: skip
    rows = make_needle_dataset(root / "data", args.videos, split="train", duration=args.duration, question_types=["mc"], seed=0)
    geometry = {"max_frames": args.max_frames, "max_long_edge": args.max_long_edge, "preprocessing": "qwen3_vl", "num_workers": args.workers}

    def module(**data):
        return TempoDataModule(tokenizer=str(model_dir / "decoder"), batch_size=args.batch_size, seed=0, **geometry, **data)

    files = module(train_files=rows)
    start = time.perf_counter()
    index = prepare_file(rows, root / "store", sampling=files.sampling, shard_rows=8, workers=args.workers,
                         progress=False, features=feature_settings(model_dir, args.feature_dtype))  # fmt: skip
    results: dict = {
        "commit": git_commit(), "machine": machine(), "load_average_at_start": list(os.getloadavg()),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "prepare": {"seconds": round(time.perf_counter() - start, 2), "bytes": index["counts"]["bytes"],
                    "kept": index["counts"]["kept"]},
    }  # fmt: skip
    paths = {
        "videos": (lambda: TempoModel.from_pretrained(model_dir), files),
        "features": (lambda: stored_features_model(model_dir), module(features=str(root / "store"), features_model=str(model_dir))),
    }
    runs: dict[str, list] = {name: [] for name in paths}
    for _ in range(args.repeats):  # interleaved, so a burst of load on a shared machine hits both paths
        for name, (build, dm) in paths.items():
            runs[name].append(train_epoch(build(), dm))
            print(name, runs[name][-1], flush=True)
    for name, rates in runs.items():
        results[name] = sorted(rates, key=lambda r: r["samples_per_s"])[len(rates) // 2] | {
            "all_samples_per_s": [r["samples_per_s"] for r in rates]
        }
    results["ratio_features_vs_videos"] = round(results["features"]["samples_per_s"] / results["videos"]["samples_per_s"], 2)
    results["load_average_at_end"] = list(os.getloadavg())
    results["stage3_store_per_sample_analytic"] = analytic_store(args.video_mbps)
    print(json.dumps(results, indent=2))
    write_json(args.out, results)


if __name__ == "__main__":
    main()
