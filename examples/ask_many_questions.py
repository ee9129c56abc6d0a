"""Ask one video several questions: the first compresses it, follow-ups reuse the SVLM prefix cache.

Run as-is, it builds a tiny random Tempo model (as ``infer_video.py`` does) and a synthetic
16-second needle video, opens a session and asks three questions, printing for each the SVLM
tokens computed and the compress time, then checks the last answer against a full recompression.
With a converted Tempo-6B:

    python examples/ask_many_questions.py --model checkpoints/tempo-6b-kit --video match.mp4 \\
        --device cuda --dtype bfloat16 --cache-device cpu
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from infer_video import tiny_model

from tempo_kit.inference import TempoPipeline

QUESTIONS = ("What shape appears in the video?", "When does it appear?", "What colour is it?")


def short_video(folder: Path) -> str:
    """A synthetic 16-second video with a shape shown once."""
    from tempo_kit.data.synthetic import make_needle_dataset

    annotations = make_needle_dataset(folder, num_videos=1, split="demo", duration=16.0, question_types=("mc",))
    return str(next((annotations.parent / "videos").iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="kit-format model folder (default: a tiny random one)")
    parser.add_argument("--video", help="a video file (default: a synthetic needle video)")
    parser.add_argument("--budget", type=int, default=None, help="visual tokens for the whole video")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="e.g. bfloat16 for the released weights")
    parser.add_argument("--cache-device", default=None, help="keep the prefix cache here, e.g. cpu")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tempo-session-"))
    model_dir = args.model or tiny_model(work)
    video = args.video or short_video(work / "needle")
    pipeline = TempoPipeline.from_pretrained(model_dir, device=args.device, dtype=args.dtype)

    with pipeline.open(video, cache_device=args.cache_device) as session:
        print(f"{video}: {session.num_frames} frames in {len(session.segments)} segments")
        for question in QUESTIONS:
            result = session.ask(question, budget=args.budget, max_new_tokens=16)
            print(
                f"{question!r} -> {result.answer!r}: {result.svlm_tokens} SVLM tokens, "
                f"compress {result.timings['compress']:.2f} s, reused {list(result.reused)}"
            )
        print(f"prefix cache: {session.cached_segments} segments, {session.cache_bytes / 2**20:.2f} MiB")

    full = pipeline.answer(video=video, query=QUESTIONS[-1], budget=args.budget, max_new_tokens=16)
    same = full.answer == result.answer and full.allocation.counts.tolist() == result.allocation.counts.tolist()
    print(f"same answer and allocation as a full recompression: {same}")


if __name__ == "__main__":
    main()
