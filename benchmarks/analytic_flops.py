"""Analytic FLOPs at the real shapes (Qwen3-VL-2B + Qwen3-4B), for checking GPU measurements.

Counts what one stage-2 training sample and one 1024-frame question cost, from the kit's FLOP
formulas (:mod:`tempo_kit.flops`) and the sequence lengths the kit builds with its own tokenizer
(the tiny one: Qwen's special tokens and time tags, shorter English text). Frames are 512×256,
the released geometry of a 16:9 video.

    python benchmarks/analytic_flops.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json

from tempo_kit.compressors.prompts import ROUTING_PROMPT, STANDARD_PROMPT
from tempo_kit.compressors.sequence import SequenceBuilder
from tempo_kit.flops import StepFlops, compressor_flops, decoder_flops, projector_flops
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.time_tags import format_time_tag
from tempo_kit.tiny.real_shapes import real_shape_configs
from tempo_kit.tiny.tokenizer import build_tokenizer

#: Frame size after the released geometry for a 16:9 video, in 16-px patches (h, w).
PATCHES = (16, 32)
#: Memory tokens per segment (paper: 128); frames per temporal patch (Qwen3-VL: 2).
K_MAX, TEMPORAL_PATCH = 128, 2
QUESTION = "What colour was the shape that appeared in the video, and when did it appear?"
ANSWER = "It was magenta, shown at about two minutes."
#: Dense bf16 peak of an H100 SXM / H200 (FLOP/s) and the MFU the issue aims for.
PEAK, TARGET_MFU = 989.4e12, 0.40


#: A training-like micro-batch for packed compressor calls: (frames, patch grid (h, w)) per sample,
#: in the released geometry: 16:9 (512×256), 4:3 (512×384), 320×240 (416×352) with a short last
#: window of 2 frames, 16:9 again; the frame counts of gpu_suite's packed stage-2 part.
MIXED_BATCH = ((128, (16, 32)), (64, (24, 32)), (34, (22, 26)), (128, (16, 32)))
#: Segments per compressor call: the kit's default ``segment_batch_size``, and a larger one (the
#: CPU demo's); frames per segment.
SEGMENTS_PER_CALL, WINDOW = (8, 32), 4


def segment_lengths(
    builder, prompt: str, frames: int, start: float, patches: tuple[int, int] = PATCHES
) -> tuple[int, tuple[int, int, int]]:
    """SVLM tokens of one segment (prompt, video, query, memory) and its patch grid."""
    t = max(1, frames // TEMPORAL_PATCH)
    per_patch = patches[0] * patches[1] // 4
    times = [start + i * TEMPORAL_PATCH / 2.0 for i in range(t)]
    prefix = builder.prefix(prompt, slot="video", tokens_per_patch=per_patch, patch_times=times)
    return len(prefix) + len(builder.suffix(QUESTION)) + K_MAX, (t, *patches)


def packed_vs_padded(builder, svlm, per_call: int) -> dict:
    """The compressor calls of :data:`MIXED_BATCH`, padded to each call's longest segment against
    packed (every segment its own length): SVLM tokens and text-model FLOPs. The vision tower runs
    each segment at its own size either way (it concatenates patches), so only the text model saves."""
    lengths, grids = [], []
    for frames, patches in MIXED_BATCH:
        for first in range(0, frames, WINDOW):
            length, grid = segment_lengths(builder, STANDARD_PROMPT, min(WINDOW, frames - first), 0.0, patches)
            lengths.append(length)
            grids.append(grid)
    # the kit's planner fills calls in sample order, so a call mixes lengths only across samples
    calls = [lengths[i : i + per_call] for i in range(0, len(lengths), per_call)]
    padded_lengths = [max(call) for call in calls for _ in call]
    padded = compressor_flops(svlm, padded_lengths, grids)
    packed = compressor_flops(svlm, lengths, grids)
    return {
        "segments": len(lengths),
        "calls": len(calls),
        "svlm_tokens": {"padded": sum(padded_lengths), "packed": sum(lengths)},
        "svlm_text_tflop": {"padded": padded.svlm / 1e12, "packed": packed.svlm / 1e12},
        "compressor_tflop": {"padded": padded.forward / 1e12, "packed": packed.forward / 1e12},
        "text_flops_ratio": padded.svlm / packed.svlm,
        "compressor_flops_ratio": padded.forward / packed.forward,
    }


def llm_length(tokenizer, segments: int, tokens_per_segment: list[int], answer: bool) -> int:
    """The LLM sequence: the ChatML text, and per segment its time tag and its tokens."""
    turns = [Turn("user", QUESTION)] + ([Turn("assistant", ANSWER)] if answer else [])
    ids, _ = encode_decoder_prompt(tokenizer, turns, has_visual=True, add_generation_prompt=not answer)
    tags = sum(len(tokenizer(format_time_tag(2.0 * i), add_special_tokens=False)["input_ids"]) for i in range(segments))
    return len(ids) - 1 + tags + sum(tokens_per_segment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    tokenizer = build_tokenizer()
    configs = real_shape_configs(tokenizer)
    svlm, llm = configs["svlm"], configs["llm"]
    builder = SequenceBuilder(tokenizer)
    d_svlm, d_llm = int(svlm.text_config.hidden_size), int(llm.hidden_size)

    # one stage-2 training sample: 128 frames in 32 segments of 4, every segment keeps k_max tokens
    seg_len, grid = segment_lengths(builder, STANDARD_PROMPT, 4, 0.0)
    train_llm = llm_length(tokenizer, 32, [K_MAX] * 32, answer=True)
    train = compressor_flops(svlm, [seg_len] * 32, [grid] * 32)
    train.projector = projector_flops(d_svlm, d_llm, 32 * K_MAX)
    lm = decoder_flops(llm, [train_llm], lm_head=True)
    train.llm = lm["layers"] + lm["lm_head"]
    step = train.training()

    # one 1024-frame question: 128 segments of 8 frames, budget 8192, 64 answer tokens
    q_len, q_grid = segment_lengths(builder, ROUTING_PROMPT, 8, 0.0)
    compress = compressor_flops(svlm, [q_len] * 128, [q_grid] * 128)
    prompt_len = llm_length(tokenizer, 128, [8192 // 128] * 128, answer=False)
    prefill = decoder_flops(llm, [prompt_len], lm_head=False)["layers"]
    decode = decoder_flops(llm, [1] * 64, lm_head=True, past_lengths=[prompt_len + i for i in range(64)])
    infer = StepFlops(
        vision_patch_embed=compress.vision_patch_embed,
        vision=compress.vision,
        svlm=compress.svlm,
        projector=projector_flops(d_svlm, d_llm, 8192),
        llm=prefill + decode["layers"] + decode["lm_head"],
    )
    figures = {
        "packed_compressor_calls": {
            f"{n}_segments_per_call": packed_vs_padded(builder, svlm, n) for n in SEGMENTS_PER_CALL
        },
        "train_sample": {
            "svlm_tokens_per_segment": seg_len,
            "visual_tokens_per_segment": grid[0] * PATCHES[0] * PATCHES[1] // 4,
            "llm_tokens": train_llm,
            "forward_tflop": {k: v / 1e12 for k, v in train.as_dict().items()},
            "step_tflop": step / 1e12,
            "seconds_per_sample_at_40pct_mfu": step / (PEAK * TARGET_MFU),
        },
        "question_1024_frames": {
            "svlm_tokens_per_segment": q_len,
            "llm_prompt_tokens": prompt_len,
            "compressor_tflop": (compress.vision_patch_embed + compress.vision + compress.svlm) / 1e12,
            "compressor_seconds_at_40pct_mfu": compress.forward / (PEAK * TARGET_MFU),
            "total_tflop": infer.forward / 1e12,
        },
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        from tempo_kit.atomic import write_json

        write_json(args.json, figures)


if __name__ == "__main__":
    main()
