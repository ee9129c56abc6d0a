"""Inference speed of the ``qwen3_vl`` compressor vs ``segment_batch_size``, and end-to-end latency.

Part 1 runs the compressor (eval mode, no gradients, routing prompt, one SVLM forward per
micro-batch of segments) over every segment of a long video for each ``segment_batch_size`` and
reports segments/s, peak GPU memory and the forward MFU (ViT + SVLM FLOPs of the real lengths,
see ``tempo_kit.flops``). Part 2 answers one question about the same video through
``TempoPipeline.answer`` — what ``tempo-kit infer`` runs — and reports the time of each phase:
``decode`` (here only cutting the frames into segments: frames are given in memory),
``compress``, ``allocate`` (ATA) and ``generate`` (LLM prefill over the budgeted visual tokens
plus ``--new-tokens`` greedy tokens; ``min_new_tokens`` forces the length since random weights
would stop at random).

Defaults follow compatibility §1 at inference: 1024 frames at 2 FPS (8.5 minutes), 8-frame segments
(128 segments), 512×256 frames (the released geometry of 16:9 video), budget 8192, bf16.

    # on a GPU machine (writes ~12.5 GB of random real-shape checkpoints once, to outputs/bench)
    python benchmarks/bench_compressor.py --json benchmarks/results/compressor_h200.json
    # CPU smoke run at tiny shapes (seconds)
    python benchmarks/bench_compressor.py --tiny
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import torch
from common import (
    QUESTION,
    add_checkpoint_arguments,
    add_frame_size_arguments,
    checkpoints,
    fill_defaults,
    machine,
    peak_flops,
    peak_memory_gib,
    random_video,
    reset_peak_memory,
    synchronize,
    write_json,
)

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE
from tempo_kit.flops import FlopRecorder, mfu


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, help="frames of the video (default 1024; tiny 32)")
    parser.add_argument("--window", type=int, default=8, help="frames per segment (inference: 8)")
    add_frame_size_arguments(parser)
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        help="segment_batch_size values (default 1 2 4 8 16 32; tiny 1 2 4)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per batch size (best is kept)")
    parser.add_argument("--k-max", type=int, help="memory tokens per segment (default 128; tiny 16)")
    parser.add_argument("--budget", type=int, help="visual-token budget (default 8192; tiny 64)")
    parser.add_argument("--new-tokens", type=int, help="generated tokens (default 64; tiny 4)")
    parser.add_argument("--dtype", help="weights' dtype (default bfloat16 on GPU, float32 on CPU)")
    parser.add_argument(
        "--attn", default="sdpa", help="attention implementation (sdpa, flash_attention_2, …)"
    )
    parser.add_argument(
        "--e2e-batch-size",
        type=int,
        default=DEFAULT_SEGMENT_BATCH_SIZE,
        help="segment_batch_size end to end (kit default)",
    )
    parser.add_argument("--skip-e2e", action="store_true", help="only the compressor sweep")
    parser.add_argument("--peak-tflops", type=float, help="peak bf16 dense TFLOP/s (default: by GPU name)")
    args = parser.parse_args(argv)
    tiny = args.tiny
    defaults = {
        "frames": 32 if tiny else 1024,
        "batch_sizes": [1, 2, 4] if tiny else [1, 2, 4, 8, 16, 32],
        "k_max": 16 if tiny else 128,
        "budget": 64 if tiny else 8192,
        "new_tokens": 4 if tiny else 64,
        "dtype": "bfloat16" if torch.cuda.is_available() else "float32",
    }
    fill_defaults(args, defaults)
    return args


def build_model(args: argparse.Namespace, paths: dict):
    from tempo_kit.model import TempoModel

    model = TempoModel.from_config(
        {
            "compressor": {
                "name": "qwen3_vl",
                "pretrained": str(paths["svlm"]),
                "k_max": args.k_max,
                "dtype": args.dtype,
                "attn_implementation": args.attn,
            },
            "projector": {"name": "linear"},
            "decoder": {
                "name": "hf_causal_lm",
                "pretrained": str(paths["llm"]),
                "dtype": args.dtype,
                "attn_implementation": args.attn,
            },
            "allocator": {"name": "ata"},
            "budget": args.budget,
        }
    )
    model.projector.to(getattr(torch, args.dtype))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()


def sweep(model, segments, args: argparse.Namespace, peak: float | None) -> list[dict[str, Any]]:
    """Segments/s, peak memory and forward MFU of the compressor for each segment_batch_size."""
    from tempo_kit.model.compression import compress_samples

    compressor = model.compressor
    recorder = FlopRecorder(model)
    rows = []
    try:
        for size in args.batch_sizes:
            compressor.segment_batch_size = size
            times = []
            with torch.no_grad():
                compress_samples(compressor, [segments], [QUESTION])  # warm-up
                reset_peak_memory()
                for _ in range(args.repeats):
                    recorder.reset()
                    synchronize()
                    start = time.perf_counter()
                    compress_samples(compressor, [segments], [QUESTION])
                    synchronize()
                    times.append(time.perf_counter() - start)
            seconds = min(times)
            flops = recorder.flops().forward
            rows.append(
                {
                    "segment_batch_size": size,
                    "seconds": seconds,
                    "segments_per_s": len(segments) / seconds,
                    "forward_tflops": flops / 1e12,
                    "mfu": None if peak is None else mfu(flops, seconds, peak),
                    "svlm_tokens_per_segment": sum(recorder.svlm_lengths) / len(segments),
                    **peak_memory_gib(),
                }
            )
    finally:
        recorder.remove()
    return rows


def end_to_end(model, frames, args: argparse.Namespace) -> dict[str, Any]:
    """Median phase timings of ``TempoPipeline.answer`` over ``repeats`` runs (after one warm-up).

    A hook synchronises the GPU after every compressor call, so the ``compress`` phase holds all
    of its GPU work instead of leaking it into the next phase. The same answer with one new token
    gives the prefill time; the difference gives the time per decoded token.
    """
    from tempo_kit.inference.api import TempoPipeline

    model.compressor.segment_batch_size = args.e2e_batch_size
    pipeline = TempoPipeline(model)
    handle = model.compressor.register_forward_hook(lambda *_: synchronize())

    def timed(new_tokens: int) -> list:
        runs = []
        for index in range(args.repeats + 1):
            synchronize()
            result = pipeline.answer(
                frames=frames,
                query=QUESTION,
                window=args.window,
                budget=args.budget,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
            )
            synchronize()
            if index:
                runs.append(result)
        return runs

    try:
        reset_peak_memory()
        runs = timed(args.new_tokens)
        memory = peak_memory_gib()
        prefill = statistics.median(r.timings["generate"] for r in timed(1))
    finally:
        handle.remove()
    seconds = {phase: statistics.median(r.timings[phase] for r in runs) for phase in runs[0].timings}
    decode = (seconds["generate"] - prefill) / max(args.new_tokens - 1, 1)
    return {
        "segment_batch_size": args.e2e_batch_size,
        "segments": runs[0].num_segments,
        "visual_tokens": runs[0].tokens_used,
        "new_tokens": args.new_tokens,
        "seconds": seconds,
        "prefill_seconds": prefill,
        "ms_per_new_token": 1000 * decode,
        **memory,
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"mode: {results['mode']}; {results['segments']} segments of {results['window']} frames "
        f"{results['frame_size'][0]}x{results['frame_size'][1]}, k_max {results['k_max']}, {results['dtype']}",
        "",
        "| segment_batch_size | segments/s | s | forward TFLOP | MFU | peak memory GiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["compressor"]:
        memory = row.get("peak_allocated_gib", row.get("peak_rss_gib"))
        share = "n/a" if row["mfu"] is None else f"{row['mfu']:.1%}"
        lines.append(
            f"| {row['segment_batch_size']} | {row['segments_per_s']:.3g} | {row['seconds']:.3g} | "
            f"{row['forward_tflops']:.3g} | {share} | {memory:.3g} |"
        )
    e2e = results.get("end_to_end")
    if e2e:
        lines += ["", f"end to end ({e2e['visual_tokens']} visual tokens, {e2e['new_tokens']} new tokens):"]
        lines += [f"  {phase}: {seconds:.3f} s" for phase, seconds in e2e["seconds"].items()]
        lines += [
            f"  (generate = prefill {e2e['prefill_seconds']:.3f} s + "
            f"{e2e['ms_per_new_token']:.1f} ms per further token)"
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tempo_kit.video import make_segments

    args = parse_args(argv)
    torch.manual_seed(0)
    paths = checkpoints(args)
    model = build_model(args, paths)
    frames = random_video(args.frames, args.height, args.width)
    segments = make_segments(frames, args.window, kind="video", real_fps=2.0)
    peak = peak_flops(args.peak_tflops)
    results: dict[str, Any] = {
        "mode": "tiny (CPU smoke test, not a performance claim)" if args.tiny else "real shapes",
        "segments": len(segments),
        "window": args.window,
        "frame_size": [args.height, args.width],
        "k_max": args.k_max,
        "dtype": args.dtype,
        "attn_implementation": args.attn,
        "peak_tflops": None if peak is None else peak / 1e12,
        "compressor": sweep(model, segments, args, peak),
    }
    if not args.skip_e2e:
        results["end_to_end"] = end_to_end(model, frames, args)
    results["machine"] = machine()
    print(report(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
