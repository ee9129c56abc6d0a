"""Padded vs packed compressor calls (``pack_segments``): tokens per call and wall time, in one run.

A padded call runs every segment as long as its longest (segments × longest tokens); a packed one
runs their sum, each segment attending only to itself (:mod:`tempo_kit.compressors.packed`).
Two batches of the ``qwen3_vl`` compressor, ``segment_batch_size`` 8:

- ``call_budget``: the batch of ``bench_call_budget.py`` — a 16:9 and a 4:3 video of the released
  geometry (512×256 and 512×384 frames), 8-frame windows. Each call holds one video's segments,
  so its rows are nearly equal: little padding to save.
- ``mixed``: a training-like batch — short clips of both geometries with short last windows, an
  image, and questions from a few words to two sentences, so calls mix row lengths.

Modes: ``padded``; ``packed`` with transformers' block-diagonal mask over the whole row (SDPA,
or ``--attn``); ``packed_segments`` with the kit's SDPA per segment (``sdpa_segments``) on CPU,
``--attn`` on a GPU (``flash_attention_2``: varlen).

Per batch and mode: calls, tokens per call (the ``inputs_embeds`` the SVLM ran: rows × width), the
median wall time of ``--repeats`` passes after a warm-up (modes interleaved pass by pass), and the
padded/packed ratios. Memory and
relevance of the packed modes are compared with the padded one.

    python benchmarks/bench_packed_calls.py --tiny --out benchmarks/results/packed_calls_cpu.md
"""

from __future__ import annotations

import argparse
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
    git_commit,
    machine,
    random_video,
    synchronize,
    write_json,
)

#: frame sizes (height, width): the released geometry of 16:9 and of 4:3 video (compatibility §1)
WIDE, NARROW = (256, 512), (384, 512)
#: questions of the mixed batch, short to long
QUESTIONS = (
    "What color?",
    QUESTION,
    "Which of the people who enter the kitchen in the first half leaves the room last, and what does "
    "that person carry when leaving? Answer with the letter of the option.",
)
#: how a call runs: padded (``--attn``); packed with transformers' block-diagonal mask (``--attn``);
#: packed with the kit's SDPA per segment (``sdpa_segments``, CPU) or ``--attn`` on a GPU
MODES = ("padded", "packed", "packed_segments")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--k-max", type=int, help="memory tokens per segment (default 128; tiny 16)")
    parser.add_argument("--segments", type=int, default=8, help="segment_batch_size")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per mode, interleaved (median)")
    parser.add_argument("--dtype", help="weights' dtype (default bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--attn", default="sdpa", help="attention implementation (a GPU: flash_attention_2)")
    parser.add_argument("--out", help="write the markdown table to this file")
    args = parser.parse_args(argv)
    if args.k_max is None:
        args.k_max = 16 if args.tiny else 128
    if args.dtype is None:
        args.dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    return args


def batches() -> dict[str, tuple[list, list[str]]]:
    """The two batches: ``{name: (samples, queries)}``."""
    from tempo_kit.video import make_segments

    def clip(frames: int, size: tuple[int, int], seed: int):
        return make_segments(random_video(frames, *size, seed=seed), 8, real_fps=2.0, source=f"{size[1]}x{size[0]}")

    two = [clip(64, WIDE, 0), clip(64, NARROW, 1)]
    image = make_segments(random_video(1, *NARROW, seed=9), 1, kind="image", source="image")
    mixed = [clip(20, WIDE, 2), clip(12, NARROW, 3), image, clip(28, WIDE, 4), clip(20, NARROW, 5), clip(12, WIDE, 6)]
    return {
        "call_budget": (two, [QUESTION] * len(two)),
        "mixed": (mixed, [QUESTIONS[i % len(QUESTIONS)] for i in range(len(mixed))]),
    }


def run(compressors: dict[str, Any], samples, queries, repeats: int) -> dict[str, dict[str, Any]]:
    """A warm-up pass per mode, then ``repeats`` rounds of one timed pass per mode, interleaved
    (a shared machine's load drifts; interleaving spreads it over the modes). Tokens per call
    are read from the SVLM's input."""
    from tempo_kit.model.compression import compress_samples

    tokens: dict[str, list[int]] = {mode: [] for mode in compressors}
    seconds: dict[str, list[float]] = {mode: [] for mode in compressors}
    outputs = {}
    hooks = [
        c.svlm.register_forward_pre_hook(
            lambda m, a, kw, mode=mode: tokens[mode].append(int(kw["inputs_embeds"].shape[:2].numel())),
            with_kwargs=True,
        )
        for mode, c in compressors.items()
    ]
    with torch.no_grad():
        for mode, compressor in compressors.items():
            outputs[mode] = compress_samples(compressor, samples, queries)  # warm-up
        for _ in range(repeats):
            for mode, compressor in compressors.items():
                tokens[mode].clear()
                synchronize()
                start = time.perf_counter()
                compress_samples(compressor, samples, queries)
                synchronize()
                seconds[mode].append(time.perf_counter() - start)
                print(f"  {mode}: {seconds[mode][-1]:.2f} s", file=sys.stderr, flush=True)
    for hook in hooks:
        hook.remove()
    segments = sum(len(s) for s in samples)
    results = {}
    for mode in compressors:
        median = statistics.median(seconds[mode])
        results[mode] = {
            "calls": len(tokens[mode]),
            "tokens_per_call": list(tokens[mode]),
            "tokens": sum(tokens[mode]),
            "seconds": median,
            "seconds_all": [round(t, 3) for t in seconds[mode]],
            "segments_per_s": segments / median,
            "tokens_per_s": sum(tokens[mode]) / median,
            "memory": outputs[mode].memory.float().cpu(),
            "relevance": outputs[mode].relevance.cpu(),
        }
    return results


def build(args: argparse.Namespace, svlm: str, mode: str):
    from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attn = "sdpa_segments" if mode == "packed_segments" and args.attn == "sdpa" else args.attn
    compressor = Qwen3VLCompressor(
        svlm, k_max=args.k_max, dtype=args.dtype, attn_implementation=attn,
        segment_batch_size=args.segments, pack_segments=mode != "padded",
    )  # fmt: skip
    return compressor.to(device).eval()


def measure(args: argparse.Namespace, svlm: str) -> list[dict[str, Any]]:
    compressors = {mode: build(args, svlm, mode) for mode in MODES}
    rows = []
    for name, (samples, queries) in batches().items():
        counts = [c for s, q in zip(samples, queries) for c in compressors["padded"].segment_tokens(s, q)]
        print(name, file=sys.stderr, flush=True)
        results = run(compressors, samples, queries, args.repeats)
        padded, packed = results["padded"], results["packed_segments"]
        rows.append({
            "batch": name,
            "segments": len(counts),
            "segment_tokens": [min(counts), max(counts)],
            **{f"{mode}_{key}": value for mode, r in results.items() for key, value in r.items()
               if key not in ("memory", "relevance")},
            "token_ratio": padded["tokens"] / packed["tokens"],
            **{f"speedup_{mode}": padded["seconds"] / results[mode]["seconds"] for mode in MODES[1:]},
            "max_abs_memory": max(float((padded["memory"] - results[m]["memory"]).abs().max()) for m in MODES[1:]),
            "max_abs_relevance": max(
                float((padded["relevance"] - results[m]["relevance"]).abs().max()) for m in MODES[1:]
            ),
        })  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]], info: dict[str, Any], command: str) -> str:
    where = f"GPU {info['gpu']}" if info["gpu"] else f"CPU only, load average {info['load_average']}"
    lines = [
        "# Padded vs packed compressor calls",
        "",
        f"`{command}` at commit {git_commit()}",
        "",
        f"Machine: {info['cpus']} CPU cores, torch threads {info['cpu_threads']}, {where}, torch {info['torch']}",
        "",
        "| batch | segments (tokens each) | mode | calls | tokens per call | tokens | s | segments/s | tokens/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for mode in MODES:
            lines.append(
                f"| {r['batch']} | {r['segments']} ({r['segment_tokens'][0]}–{r['segment_tokens'][1]}) | {mode} | "
                f"{r[f'{mode}_calls']} | {' '.join(map(str, r[f'{mode}_tokens_per_call']))} | {r[f'{mode}_tokens']} | "
                f"{r[f'{mode}_seconds']:.2f} | {r[f'{mode}_segments_per_s']:.2f} | {r[f'{mode}_tokens_per_s']:.0f} |"
            )
    lines += ["", "| batch | padded / packed tokens | speed-up packed (block mask) | speed-up packed_segments | "
              "max abs Δ memory | max abs Δ relevance |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['token_ratio']:.2f}× | {r['speedup_packed']:.2f}× | "
            f"{r['speedup_packed_segments']:.2f}× | {r['max_abs_memory']:.3g} | {r['max_abs_relevance']:.3g} |"
        )
    lines += ["", "Speed-up: padded seconds / packed seconds in the same run; Δ: packed against padded, "
              "the larger over both packed modes."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    svlm = str(checkpoints(args)["svlm"])
    rows = measure(args, svlm)
    command = "python benchmarks/bench_packed_calls.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(rows, machine(), command.strip())
    print(text)
    if args.out:
        from tempo_kit.atomic import write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, text)
    write_json(args.json, {"machine": machine(), "commit": git_commit(), "batches": rows})


if __name__ == "__main__":
    main()
