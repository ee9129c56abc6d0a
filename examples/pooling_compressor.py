"""Plug the query-agnostic ``pooling`` compressor into TempoModel and answer a question about a video.

Run as-is, it builds tiny random checkpoints in a temporary folder and a synthetic 16-second video, so it finishes in seconds on a CPU and the
answer is random text. Point it at real checkpoints and a real video for a real answer:

    python examples/pooling_compressor.py --svlm checkpoints/Qwen3-VL-2B-Instruct \\
        --llm checkpoints/Qwen3-4B --video clip.mp4 --question "What happens at the end?"

(with a fresh, untrained projector the real LLM still cannot read the pooled tokens: train one
with a stage-1 recipe first; this script shows the wiring.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tempo_kit.model import TempoModel, inference_batch
from tempo_kit.video import INFERENCE_WINDOW, load_video, make_segments


def checkpoints(args: argparse.Namespace) -> tuple[Path, Path]:
    """The SVLM and LLM folders: given on the command line, or built tiny now."""
    if args.svlm and args.llm:
        return Path(args.svlm), Path(args.llm)
    import tempfile

    from tempo_kit.tiny import make_tiny

    tiny = make_tiny(tempfile.mkdtemp(prefix="tempo-tiny-"))
    return tiny["svlm"], tiny["llm"]


def synthetic_frames(seconds: int = 16, fps: float = 2.0, size: int = 64) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]``: a red square crossing a grey background, sampled at ``fps``."""
    count = int(seconds * fps)
    frames = torch.full((count, size, size, 3), 128, dtype=torch.uint8)
    for t in range(count):
        x = t * (size - 16) // max(count - 1, 1)
        frames[t, 24:40, x : x + 16] = torch.tensor([220, 30, 30], dtype=torch.uint8)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svlm", help="local Qwen3-VL checkpoint folder (its vision tower is used)")
    parser.add_argument("--llm", help="local causal-LM checkpoint folder (e.g. Qwen3-4B)")
    parser.add_argument("--video", help="a video file (default: a synthetic clip)")
    parser.add_argument("--question", default="Where does the red square go?")
    parser.add_argument("--budget", type=int, default=64, help="visual tokens for the whole video")
    parser.add_argument("--k-max", type=int, default=16, help="pooled tokens per segment")
    args = parser.parse_args()

    svlm, llm = checkpoints(args)
    model = TempoModel.from_config(
        {
            # any registered compressor plugs in here by name; this one needs no query
            "compressor": {"name": "pooling", "pretrained": str(svlm), "k_max": args.k_max},
            "projector": {"name": "mlp2x_gelu"},  # widths inferred: vision tower → LLM
            "decoder": {"name": "hf_causal_lm", "pretrained": str(llm)},
            "allocator": {"name": "ata"},  # no relevance → every segment gets the same share
            "budget": args.budget,
            "k_min": 4,
        }
    ).eval()

    if args.video:
        segments = make_segments(load_video(args.video), window=INFERENCE_WINDOW)
    else:
        segments = make_segments(synthetic_frames(), window=INFERENCE_WINDOW)
    out = model.generate(inference_batch(model.tokenizer, [segments], [args.question]), max_new_tokens=16)

    allocation, stats = out.allocations[0], out.stats[0]
    print(f"segments: {len(segments)} at {[round(float(t), 1) for t in segments.times]} s")
    print(f"tokens per segment: {allocation.counts.tolist()} (Σ={allocation.total} ≤ budget {args.budget})")
    print(
        f"LLM input: {stats.text} text + {stats.tags} time-tag + {stats.visual} visual = {stats.total} tokens"
    )
    print(f"answer: {out.texts[0]!r} ({out.token_ids.shape[1]} new tokens)")


if __name__ == "__main__":
    main()
