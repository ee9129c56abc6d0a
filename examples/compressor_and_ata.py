"""Use Tempo's query-aware compressor and ATA inside your own model, without TempoModel.

The pieces are ordinary modules from the registries: the compressor turns each segment of a
video into ``k_max`` memory tokens plus a relevance score for the question, ATA turns the scores
into a token count per segment under a budget, a reduction keeps that many tokens, and your own
projection maps them to your model's width. Run as-is it builds a tiny random SVLM and a
synthetic clip; with a real checkpoint and video:

    python examples/compressor_and_ata.py --svlm checkpoints/Qwen3-VL-2B-Instruct \\
        --video clip.mp4 --question "When does the dog jump?" --budget 512
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

from tempo_kit.allocators import reduce_tokens
from tempo_kit.registry import ALLOCATORS, COMPRESSORS
from tempo_kit.video import INFERENCE_WINDOW, load_video, make_segments


def svlm_folder(path: str | None, scratch: str) -> Path:
    """The Qwen3-VL checkpoint: given, or built tiny now in ``scratch`` (removed at the end)."""
    if path:
        return Path(path)
    from tempo_kit.tiny import make_tiny

    return make_tiny(scratch)["svlm"]


def synthetic_frames(seconds: int = 24, fps: float = 2.0, size: int = 64) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]``: grey frames with a green square in the middle third of the clip."""
    frames = torch.full((int(seconds * fps), size, size, 3), 128, dtype=torch.uint8)
    third = len(frames) // 3
    frames[third : 2 * third, 20:44, 20:44] = torch.tensor([30, 200, 30], dtype=torch.uint8)
    return frames


class MyVideoAdapter(nn.Module):
    """Your model's side: kept tokens of every segment → your width, each segment led by its time."""

    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, width)
        self.time = nn.Linear(1, width)  # a learned time embedding instead of Tempo's text tags

    def forward(self, kept: list[torch.Tensor], times: torch.Tensor) -> torch.Tensor:
        rows = []
        for tokens, t in zip(kept, times):
            if len(tokens):  # a segment given 0 tokens is dropped with its time
                rows += [self.time(t.view(1, 1).float()), self.proj(tokens)]
        return torch.cat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svlm", help="local Qwen3-VL checkpoint folder (default: tiny random)")
    parser.add_argument("--video", help="a video file (default: a synthetic clip)")
    parser.add_argument("--question", default="When is the green square shown?")
    parser.add_argument("--budget", type=int, default=24, help="visual tokens for the whole video")
    parser.add_argument("--k-max", type=int, default=8, help="memory tokens per segment (128 in the paper)")
    parser.add_argument("--k-min", type=int, default=1, help="anchor tokens every segment keeps")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tempo-tiny-") as scratch:  # the built model reads it at once
        compressor = COMPRESSORS.build(
            {"name": "qwen3_vl", "pretrained": str(svlm_folder(args.svlm, scratch)), "k_max": args.k_max}
        ).eval()
    allocator = ALLOCATORS.build({"name": "ata", "mode": "exact"})  # budget-exact ATA

    clip = load_video(args.video) if args.video else synthetic_frames()
    segments = make_segments(clip, window=INFERENCE_WINDOW)
    with torch.no_grad():
        out = compressor([segments], [args.question])  # memory [S, k_max, d], relevance [S]
    counts = allocator(out.relevance, k_max=args.k_max, budget=args.budget, k_min=args.k_min)
    kept = reduce_tokens(out.memory, counts, "head")  # the first counts[i] memory tokens of each

    adapter = MyVideoAdapter(compressor.hidden_size, width=64)
    sequence = adapter(kept, segments.times)
    print(f"segments: {len(segments)} at {[round(float(t), 1) for t in segments.times]} s")
    print(f"relevance: {[round(float(s), 3) for s in out.relevance]}")
    print(f"tokens per segment: {counts.tolist()} (Σ={int(counts.sum())}, budget {args.budget})")
    print(f"your model's visual input: {tuple(sequence.shape)}")
    assert int(counts.sum()) <= args.budget and sequence.shape[0] == int(counts.sum()) + int((counts > 0).sum())


if __name__ == "__main__":
    main()
