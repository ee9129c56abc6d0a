"""Write the docs' allocation figure from the demo model: where ATA spends a budget on a needle video.

    bash scripts/demo.sh                  # trains outputs/demo/final
    python scripts/docs_figures.py        # → docs/assets/infer-allocation.png and .json

The figure on the docs' home page, the `infer` page and the examples page is this one. It is drawn
from the model the demo trains (relevance learned with the answer), on a needle video longer than
the demo's training videos and read the way they were read (one frame every 2 s, 2 frames per
segment), at a budget that binds: ``k_min`` anchors everywhere and what is left where the
relevance is high. Beside the PNG, the JSON holds the figure's data — tokens and relevance per
segment, the segment times, the shaded span — so a test can check what the caption says: the most
tokens go to the segments the shape is on screen in.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The needle video of the figure: long enough for a dozen segments, the shape on for 4 s.
DURATION_S = 40.0
NEEDLE_S = 4.0
#: Frames read per second and per segment, as the demo's training videos were read (8 frames of
#: 16 s, 2 per segment).
SAMPLE_FPS = 0.5
WINDOW = 2
#: Visual tokens for the whole video: 4 anchors for each of its 10 segments plus 24 more.
BUDGET = 64
#: Seed of the synthetic video (its needle lies in the middle half of the video).
SEED = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="outputs/demo/final", help="kit-format model (the demo's)")
    parser.add_argument("--out", default="docs/assets", help="folder for infer-allocation.png/.json")
    parser.add_argument("--budget", type=int, default=BUDGET, help=f"visual tokens (default {BUDGET})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the needle video (default {SEED})")
    return parser.parse_args(argv)


def needle_video(folder: Path, seed: int) -> dict[str, Any]:
    """One synthetic needle video like the demo's, longer: its annotation row (``video`` absolute)."""
    from tempo_kit.data.synthetic import make_needle_dataset

    rows_file = make_needle_dataset(
        folder, 1, split="figure", duration=DURATION_S, fps=2.0, needle_duration=NEEDLE_S,
        categories=("colour",), question_types=("open",), window=WINDOW, seed=seed,
    )  # fmt: skip
    row = json.loads(rows_file.read_text().splitlines()[0])
    row["video"] = str(rows_file.parent / row["video"])
    return row


def figure_data(result: Any, row: dict[str, Any], model: str) -> dict[str, Any]:
    """What the figure shows, as numbers (the file tests read instead of the pixels)."""
    allocation = result.allocation
    return {
        "model": model,
        "question": result.query,
        "answer": result.answer,
        "answer_key": row["answer"],
        "budget": int(allocation.budget),
        "k_min": int(allocation.k_min),
        "k_max": int(allocation.k_max),
        "allocator": "ata",
        "segment_seconds": WINDOW / SAMPLE_FPS,
        "times": [round(float(t), 3) for t in allocation.times],
        "counts": [int(c) for c in allocation.counts],
        "relevance": [round(float(s), 4) for s in allocation.relevance],
        "shaded": [row["needle_start"], row["needle_end"]],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tempo_kit.atomic import write_json
    from tempo_kit.errors import TempoKitError
    from tempo_kit.inference.api import TempoPipeline

    if not (Path(args.model) / "config.json").is_file():
        print(f"docs_figures: error: --model {args.model}: no exported model; run bash scripts/demo.sh first",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tempo-figure-") as work:
        row = needle_video(Path(work), args.seed)
        try:
            pipe = TempoPipeline.from_pretrained(args.model)
            result = pipe.answer(
                row["video"], row["question"], budget=args.budget, allocator="ata", fps=SAMPLE_FPS,
                window=WINDOW, max_frames=int(DURATION_S * SAMPLE_FPS), backend="pyav", max_new_tokens=8,
            )  # fmt: skip
        except TempoKitError as error:
            print(f"docs_figures: error: {error}", file=sys.stderr)
            return 2
        shaded = (row["needle_start"], row["needle_end"])
        png = result.plot(out / "infer-allocation.png", highlight=shaded, highlight_label="shape shown")
    data = figure_data(result, row, args.model)
    write_json(out / "infer-allocation.json", data, indent=1)
    print(f"{png}: {data['counts']} tokens per segment, shape shown {shaded[0]:.1f}–{shaded[1]:.1f} s, "
          f"answer {data['answer']!r} (key {data['answer_key']!r})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
