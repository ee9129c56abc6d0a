"""Follow-up vs first question in a ``VideoSession``: compressor time, SVLM tokens and FLOPs.

Part 1 (measured) opens a session on a random video with the tiny (``--tiny``) or given
checkpoints and asks a first question (vision tower + every segment's prefix + its question part)
and then follow-ups (question part only, against the cached prefixes), beside the uncached
``TempoPipeline.answer`` for the same questions. It reports the compress phase's time (best of
``--repeats``), the SVLM tokens computed and the compressor FLOPs the kit's ``FlopRecorder`` counts
from the shapes really run.

Part 2 (analytic, no weights) counts the compressor FLOPs per segment at the real shapes of
Qwen3-VL-2B (compatibility §5) with ``tempo_kit.flops``: a window of 8 frames of 512×256 (4 temporal
patches of 128 tokens), the routing prompt, 128 memory tokens, and questions of a few lengths; the
token counts come from the kit's tokenizer, which splits text more finely than Qwen's.

    python benchmarks/bench_session.py --tiny --json benchmarks/results/session_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from common import QUESTION, add_checkpoint_arguments, checkpoints, machine, random_video, write_json

from tempo_kit.flops import FlopRecorder, compressor_flops

FIRST = QUESTION
FOLLOW_UPS = (
    "What colour is the square?",
    "Describe what happens right after the circle disappears, and say which object moves fastest.",
)
#: Questions for the analytic part: a short one, a multiple-choice one, a Video-MME-style prompt.
ANALYTIC_QUESTIONS = {
    "short": "What colour is the square?",
    "multiple_choice": FIRST,
    "video_mme_prompt": (
        "Select the best answer to the following multiple-choice question based on the video and the "
        "subtitles. Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "What is the man holding when he enters the kitchen for the second time?\nA. A knife.\n"
        "B. A red cup.\nC. A phone.\nD. Nothing.\n\nAnswer with the option's letter from the given "
        "choices directly."
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--frames", type=int, default=64, help="frames of the random video (default 64)")
    parser.add_argument("--height", type=int, default=64, help="frame height (tiny default 64)")
    parser.add_argument("--width", type=int, default=96, help="frame width (tiny default 96)")
    parser.add_argument("--k-max", type=int, default=16, help="memory tokens per segment (tiny default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (the best is kept)")
    return parser.parse_args(argv)


def measured(args: argparse.Namespace) -> dict[str, Any]:
    from tempo_kit.inference import TempoPipeline
    from tempo_kit.model import TempoModel

    paths = checkpoints(args)
    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(paths["svlm"]), "k_max": args.k_max,
                           "dtype": "float32"},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"])},
        }
    )
    pipeline = TempoPipeline(model)
    frames = random_video(args.frames, args.height, args.width)
    recorder = FlopRecorder(model)
    generation = {"max_new_tokens": 1}

    def run(ask) -> dict[str, Any]:
        times, result, flops = [], None, None
        for _ in range(args.repeats):
            recorder.reset()
            result = ask()
            flops = recorder.flops()
            times.append(result.timings["compress"])
        return {
            "compress_s": min(times),
            "compress_s_median": statistics.median(times),
            "svlm_tokens": result.svlm_tokens,
            "compressor_gflops": (flops.vision_patch_embed + flops.vision + flops.svlm) / 1e9,
        }

    pipeline.answer(frames=frames, query=FIRST, **generation)  # warm-up
    uncached = run(lambda: pipeline.answer(frames=frames, query=FIRST, **generation))
    sessions = []

    def first_question():
        session = pipeline.open(frames=frames)
        sessions.append(session)
        return session.ask(FIRST, **generation)

    first = run(first_question)
    session = sessions[-1]
    follow_ups = {q: run(lambda q=q: session.ask(q, **generation)) for q in FOLLOW_UPS}
    uncached["svlm_tokens"] = first["svlm_tokens"]  # the same sequences, in one pass each
    return {
        "video": {"frames": args.frames, "height": args.height, "width": args.width,
                  "segments": len(session.segments), "k_max": args.k_max},
        "cache_mib": session.cache_bytes / 2**20,
        "uncached_answer": uncached,
        "first_question": first,
        "follow_ups": follow_ups,
    }


def analytic() -> dict[str, Any]:
    """Per-segment compressor FLOPs at real shapes: first question vs follow-up."""
    from tempo_kit.compressors.prompts import ROUTING_PROMPT
    from tempo_kit.compressors.sequence import SequenceBuilder
    from tempo_kit.tiny.real_shapes import real_shape_configs
    from tempo_kit.tiny.tokenizer import build_tokenizer

    svlm = real_shape_configs()["svlm"]
    builder = SequenceBuilder(build_tokenizer())
    grid = (4, 16, 32)  # 8 frames of 512×256 in patches of 16 px, 2 frames per temporal patch
    per_patch = 16 * 32 // 4
    times = [0.3, 1.3, 2.3, 3.3]
    prefix = len(builder.prefix(ROUTING_PROMPT, slot="video", tokens_per_patch=per_patch, patch_times=times))
    k_max = 128
    out: dict[str, Any] = {"prefix_tokens": prefix, "k_max": k_max, "grid_thw": grid, "questions": {}}
    for name, question in ANALYTIC_QUESTIONS.items():
        suffix = len(builder.suffix(question)) + k_max
        first = compressor_flops(svlm, [prefix + suffix], [grid])
        follow = compressor_flops(svlm, [suffix], [], past_lengths=[prefix])
        first_total = first.vision_patch_embed + first.vision + first.svlm
        follow_total = follow.svlm
        out["questions"][name] = {
            "suffix_tokens": suffix,
            "first_gflops": first_total / 1e9,
            "first_vision_gflops": (first.vision_patch_embed + first.vision) / 1e9,
            "follow_up_gflops": follow_total / 1e9,
            "ratio": first_total / follow_total,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    results = {"machine": machine(), "measured": measured(args), "analytic_real_shapes": analytic()}
    m = results["measured"]
    print(f"video: {m['video']}; prefix cache {m['cache_mib']:.2f} MiB")
    rows = [("uncached answer()", m["uncached_answer"]), ("session, first question", m["first_question"])]
    rows += [(f"follow-up: {q[:40]}…", r) for q, r in m["follow_ups"].items()]
    print(f"{'':48} {'compress s':>10} {'SVLM tokens':>12} {'GFLOPs':>9}")
    for name, r in rows:
        print(f"{name:48} {r['compress_s']:10.3f} {r['svlm_tokens']:12d} {r['compressor_gflops']:9.3f}")
    a = results["analytic_real_shapes"]
    print(f"real shapes, per segment: prefix {a['prefix_tokens']} tokens (+ vision tower on {a['grid_thw']})")
    for name, q in a["questions"].items():
        print(
            f"  {name:18} question+memory {q['suffix_tokens']:4d} tokens: first {q['first_gflops']:8.1f} GFLOPs "
            f"(vision {q['first_vision_gflops']:.1f}), follow-up {q['follow_up_gflops']:7.1f} GFLOPs, "
            f"ratio {q['ratio']:.2f}x"
        )
    print(f"done in {time.perf_counter() - start:.0f} s")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
