"""Answer a question about a video with a saved Tempo model and plot where the tokens went.

Run as-is, it builds a tiny random Tempo model (from tiny checkpoints in a temporary folder) and a
synthetic one-minute needle video, so it finishes in
seconds on a CPU; the answer of random weights is random text. With a converted Tempo-6B:

    tempo-kit convert to-kit checkpoints/Tempo-6B checkpoints/tempo-6b-kit \\
        --svlm checkpoints/Qwen3-VL-2B-Instruct
    python examples/infer_video.py --model checkpoints/tempo-6b-kit --video match.mp4 \\
        --question "Who scores the second goal?" --budget 4096 --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tempo_kit.inference.api import TempoPipeline


def tiny_model(folder: Path) -> Path:
    """A kit-format Tempo model on tiny random checkpoints (k_max 16, budget 128)."""
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    tiny = make_tiny(folder / "tiny")
    svlm, llm = tiny["svlm"], tiny["llm"]
    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(svlm), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(llm)},
            "budget": 128,
            "k_min": 4,
        }
    )
    return model.save_pretrained(folder / "tempo")


def needle_video(folder: Path) -> tuple[str, str, tuple[float, float]]:
    """A synthetic 60-second video with a shape shown once: its path, question and the shape's span."""
    from tempo_kit.data.synthetic import make_needle_dataset

    annotations = make_needle_dataset(
        folder / "needle", num_videos=1, split="demo", duration=60.0, question_types=("mc",), seed=4
    )
    row = json.loads(annotations.read_text().splitlines()[0])
    return str(annotations.parent / row["video"]), row["question"], (row["needle_start"], row["needle_end"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="kit-format model folder (default: a tiny random one)")
    parser.add_argument("--video", help="a video file (default: a synthetic needle video)")
    parser.add_argument("--question", help="the question (default: the synthetic video's)")
    parser.add_argument("--budget", type=int, default=None, help="visual tokens for the whole video")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="e.g. bfloat16 for the released weights")
    parser.add_argument("--plot", default="allocation.png", help="where to write the allocation figure")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tempo-infer-"))
    model_dir = args.model or tiny_model(work)
    video, question, span = (args.video, args.question, None) if args.video else needle_video(work)
    question = args.question or question

    pipeline = TempoPipeline.from_pretrained(model_dir, device=args.device, dtype=args.dtype)
    result = pipeline.answer(
        video=video, query=question, budget=args.budget, max_new_tokens=32, progress=True
    )

    print(f"question: {question}")
    print(f"answer: {result.answer!r}")
    print(
        f"visual tokens: {result.tokens_used} of budget {result.budget} "
        f"({result.tokens_per_frame:.2f} per frame over {result.num_frames} frames)"
    )
    print(f"segments kept: {result.kept_segments}/{result.num_segments}")
    print(f"tokens per segment: {result.allocation.counts.tolist()}")
    print("timings: " + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in result.timings.items()))
    # on the synthetic video the shape's time is known: shade it to compare with the allocation
    print(f"allocation plot: {result.plot(args.plot, highlight=span, highlight_label='shape shown')}")


if __name__ == "__main__":
    main()
