"""Compressor calls cut by segment count vs by a token budget, on a batch of mixed frame sizes.

One batch holds two videos of the released geometry of 16:9 and of 4:3 video (512×256 and 512×384
frames: 512 and 768 visual tokens per 8-frame segment). ``count`` cuts the ``qwen3_vl``
compressor's calls by ``segment_batch_size`` alone (``--segments``, the kit's 8), so a call of 4:3
segments runs a longer padded batch than a call of 16:9 ones. ``tokens`` sets
``call_token_budget`` to what ``--segments`` 16:9 segments cost (segments × the longest sequence)
and lifts the segment cap (``--cap``), so every call holds about the same number of tokens: more
segments of the short sequences, fewer of the long ones. ``count_safe`` is the best a segment count
can do under that bound: as many segments as the budget holds of the longest (4:3) sequences.

Each mode runs in a fresh process (peak memory is its own; on CPU the process's peak RSS, model and
libraries included). Per call: segments, padded tokens (rows × width of the batch the SVLM ran,
read from its attention mask), seconds, and on a GPU the call's peak memory. The memory and
relevance of every mode are compared.

    python benchmarks/bench_call_budget.py --tiny --out benchmarks/results/call_budget_cpu.md
    python benchmarks/bench_call_budget.py --json benchmarks/results/call_budget_h200.json   # GPU, real shapes
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from common import (
    QUESTION,
    add_checkpoint_arguments,
    checkpoints,
    machine,
    peak_memory_gib,
    random_video,
    reset_peak_memory,
    synchronize,
    write_json,
)

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE

#: the two frame sizes of the batch: released geometry of 16:9 and of 4:3 video (compatibility §1)
GEOMETRIES = ((256, 512), (384, 512))
#: how calls are cut: by --segments alone; by as many segments as the budget holds of the longest
#: sequences (a count that is safe for every geometry); by the budget, with a loose segment cap
MODES = ("count", "count_safe", "tokens")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, help="frames of each video (default 256; tiny 64)")
    parser.add_argument("--window", type=int, default=8, help="frames per segment (inference: 8)")
    parser.add_argument(
        "--segments", type=int, default=DEFAULT_SEGMENT_BATCH_SIZE, help="segment_batch_size of the count mode"
    )
    parser.add_argument("--cap", type=int, default=64, help="segment_batch_size of the token mode (a loose cap)")
    parser.add_argument("--k-max", type=int, help="memory tokens per segment (default 128; tiny 16)")
    parser.add_argument("--dtype", help="weights' dtype (default bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--attn", default="sdpa", help="attention implementation")
    parser.add_argument("--out", help="write the markdown table to this file")
    args = parser.parse_args(argv)
    defaults = {
        "frames": 64 if args.tiny else 256,
        "k_max": 16 if args.tiny else 128,
        "dtype": "bfloat16" if torch.cuda.is_available() else "float32",
    }
    for key, value in defaults.items():  # they depend on --tiny, known only after parsing
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def batch(args: argparse.Namespace):
    from tempo_kit.video import make_segments

    return [
        make_segments(random_video(args.frames, h, w, seed=i), args.window, real_fps=2.0, source=f"{w}x{h}")
        for i, (h, w) in enumerate(GEOMETRIES)
    ]


def run_mode(args: argparse.Namespace, svlm: str, mode: str) -> dict[str, Any]:
    """One mode in this process: a warm-up pass, then one measured pass with a record per call."""
    from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
    from tempo_kit.model.compression import compress_samples

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    compressor = Qwen3VLCompressor(svlm, k_max=args.k_max, dtype=args.dtype, attn_implementation=args.attn)
    compressor = compressor.to(device).eval()
    samples = batch(args)
    queries = [QUESTION] * len(samples)
    counts = [compressor.segment_tokens(s, QUESTION) for s in samples]
    budget = args.segments * max(counts[0])  # what --segments 16:9 segments cost
    if mode == "count":
        compressor.segment_batch_size = args.segments
    elif mode == "count_safe":  # the most segments of the longest sequences that fit the budget
        compressor.segment_batch_size = budget // max(max(c) for c in counts)
    else:
        compressor.segment_batch_size, compressor.call_token_budget = args.cap, budget
    shapes: list[tuple[int, int]] = []
    hook = compressor.svlm.register_forward_pre_hook(
        lambda m, a, kw: shapes.append(tuple(kw["attention_mask"].shape)), with_kwargs=True
    )
    calls: list[dict[str, Any]] = []
    tick = time.perf_counter()

    def record(done: int) -> None:
        nonlocal tick
        synchronize()
        now = time.perf_counter()
        rows, width = shapes[-1]
        calls.append({"segments": done, "padded_tokens": rows * width, "seconds": now - tick, **gpu_peak()})
        reset_peak_memory()
        tick = time.perf_counter()

    with torch.no_grad():
        compress_samples(compressor, samples, queries)  # warm-up
        shapes.clear()
        reset_peak_memory()
        start = tick = time.perf_counter()
        out = compress_samples(compressor, samples, queries, on_chunk=record)
        synchronize()
        total = time.perf_counter() - start
    hook.remove()
    return {
        "mode": mode,
        "segment_batch_size": compressor.segment_batch_size,
        "call_token_budget": compressor.call_token_budget,
        "segment_tokens": {s.source: sorted(set(c)) for s, c in zip(samples, counts)},
        "calls": calls,
        "seconds": total,
        "segments_per_s": sum(len(s) for s in samples) / total,
        "memory": out.memory.float().cpu(),
        "relevance": out.relevance.cpu(),
        **peak_memory_gib(),
    }


def gpu_peak() -> dict[str, float]:
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30} if torch.cuda.is_available() else {}


def in_fresh_process(args: argparse.Namespace, svlm: str, mode: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(run_mode, args, svlm, mode).result()


def summary(result: dict[str, Any]) -> dict[str, Any]:
    calls = result["calls"]
    tokens = [c["padded_tokens"] for c in calls]
    seconds = [c["seconds"] for c in calls]
    row = {
        "mode": result["mode"],
        "segment_batch_size": result["segment_batch_size"],
        "call_token_budget": result["call_token_budget"],
        "calls": len(calls),
        "segments_per_call": [c["segments"] for c in calls],
        "padded_tokens_min": min(tokens),
        "padded_tokens_max": max(tokens),
        "seconds_per_call_mean": statistics.mean(seconds),
        "seconds_per_call_max": max(seconds),
        "seconds": result["seconds"],
        "segments_per_s": result["segments_per_s"],
        "segment_tokens": result["segment_tokens"],
    }
    for key in ("peak_rss_gib", "peak_allocated_gib"):
        if key in result:
            row[key] = result[key]
    if calls and "peak_allocated_gib" in calls[0]:
        row["call_peak_allocated_gib_max"] = max(c["peak_allocated_gib"] for c in calls)
    return row


def markdown(rows: list[dict[str, Any]], same: dict[str, float], command: str) -> str:
    memory = "peak allocated GiB (max per call)" if torch.cuda.is_available() else "peak RSS GiB (process)"
    lines = [
        "# Compressor calls by segment count vs by token budget",
        "",
        f"`{command}`",
        "",
        f"Machine: {describe_machine(machine())}",
        "",
        f"Segment tokens (prompt + visual + query + memory): {rows[0]['segment_tokens']}",
        "",
        f"| mode | segment_batch_size | call_token_budget | calls | segments per call | padded tokens per call (min–max) | s per call (mean / max) | total s | segments/s | {memory} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = r.get("call_peak_allocated_gib_max", r.get("peak_rss_gib"))
        lines.append(
            f"| {r['mode']} | {r['segment_batch_size']} | {r['call_token_budget']} | {r['calls']} | "
            f"{' '.join(map(str, r['segments_per_call']))} | {r['padded_tokens_min']}–{r['padded_tokens_max']} | "
            f"{r['seconds_per_call_mean']:.3f} / {r['seconds_per_call_max']:.3f} | {r['seconds']:.2f} | "
            f"{r['segments_per_s']:.2f} | {peak:.3f} |"
        )
    lines += [
        "",
        f"Same memory and relevance in every mode (against `count`): max |Δ memory| = {same['memory']:.3g}, "
        f"max |Δ relevance| = {same['relevance']:.3g}.",
    ]
    return "\n".join(lines) + "\n"


def describe_machine(info: dict[str, Any]) -> str:
    where = f"GPU {info['gpu']}" if info["gpu"] else f"CPU only, load average {info['load_average']}"
    return f"{info['cpus']} CPU cores, torch threads {info['cpu_threads']}, {where}, torch {info['torch']}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    svlm = str(checkpoints(args)["svlm"])
    results = [in_fresh_process(args, svlm, mode) for mode in MODES]
    same = {
        key: max(float((results[0][key] - other[key]).abs().max()) for other in results[1:])
        for key in ("memory", "relevance")
    }
    rows = [summary(r) for r in results]
    command = "python benchmarks/bench_call_budget.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(rows, same, command.strip())
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    write_json(args.json, {"machine": machine(), "modes": rows, "max_abs_difference": same})


if __name__ == "__main__":
    main()
