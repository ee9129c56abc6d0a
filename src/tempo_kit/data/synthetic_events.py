"""Synthetic videos where the question decides which moment matters: several events, one asked about.

:func:`make_events_dataset` writes real H.264 videos (PyAV) of a drifting background with two or
more short events, each a big shape of a different kind (circle, square, …) painted in horizontal
colour stripes. Every event is as salient as every other, so a score that looks only at the pixels
cannot tell which one a question wants; only the question can. Three kinds of question:

* ``colours`` — "What colours were the stripes of the square, from top to bottom?" → ``"red blue"``.
  The evidence is one event, named by its shape; the answer is a sequence of colours (``stripes``
  of them, 8 colours each), more than a single colour word, so it needs more than a segment's
  temporal anchor of ``k_min`` tokens to survive.
* ``order`` — "Which appeared first, the circle or the square?" → ``"circle"``: two events.
* ``count`` — "How many shapes appeared?" → ``"3"``: every event (the count varies per video).

Rows carry ``relevant_spans`` (the asked events' time ranges: the router stage's labels and the
routing metrics' ground truth), ``events`` (every event's shape, colours, span and segment) and,
for tools written for single-needle rows, ``needle_start``/``needle_end``/``needle_time``/
``needle_segment`` of the first asked event. Everything follows from ``seed``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tempo_kit.atomic import atomic_file
from tempo_kit.data.synthetic import (
    COLOURS,
    DEFAULT_CODEC,
    SHAPES,
    _background,
    _shape_mask,
    check_positive,
    needle_segment_index,
    write_video,
)
from tempo_kit.video.sampling import DEFAULT_MAX_FRAMES, DEFAULT_SAMPLE_FPS

QUESTION_KINDS = ("colours", "order", "count")
COLOURS_QUESTION = "What colours were the stripes of the {shape}, from top to bottom?"
ORDER_QUESTION = "Which appeared first, the {a} or the {b}?"
COUNT_QUESTION = "How many shapes appeared?"
INSTRUCTIONS = {
    "colours": "Answer with the colours in order.",
    "order": "Answer with one word.",
    "count": "Answer with a number.",
}
#: Shapes drawn this share of the frame's short side: big enough to dominate a frame.
SHAPE_FILL = 0.8


def striped_frame_paint(shape: str, colours: Sequence[str], height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W, 4]``: RGB of ``shape`` split into ``len(colours)`` horizontal stripes, alpha last.

    Stripes divide the shape's own rows (not the frame's), top to bottom in ``colours`` order.
    """
    mask = _shape_mask(shape, height, width, SHAPE_FILL)
    rows = np.flatnonzero(mask.any(axis=1))
    paint = np.zeros((height, width, 4), dtype=np.uint8)
    bands = np.array_split(np.arange(rows[0], rows[-1] + 1), len(colours))
    for band, name in zip(bands, colours, strict=True):
        stripe = np.zeros_like(mask)
        stripe[band] = True
        paint[stripe & mask, :3] = COLOURS[name]
    paint[mask, 3] = 255
    return paint


def _event_starts(rng: np.random.Generator, count: int, duration: float, length: float, fps: float) -> list[float]:
    """Start times of ``count`` non-overlapping events in time order, each at least ``length`` apart.

    The video (minus 5 % at each end) is cut into slots of ``2·length``; each event takes its own
    slot at a random offset, so two events never touch.
    """
    margin = 0.05 * duration
    slot = 2 * length
    slots = int((duration - 2 * margin) // slot)
    chosen = sorted(rng.choice(slots, size=count, replace=False).tolist())
    starts = [margin + s * slot + float(rng.uniform(0, slot - length)) for s in chosen]
    return [round(t * fps) / fps for t in starts]


def _questions(rng, events, kinds):
    """``(kind, question, answer, asked event indices)`` for one video, one per kind."""
    out = []
    for kind in kinds:
        if kind == "colours":
            i = int(rng.integers(len(events)))
            text = COLOURS_QUESTION.format(shape=events[i]["shape"])
            out.append((kind, text, " ".join(events[i]["colours"]), [i]))
        elif kind == "order":
            i, j = sorted(rng.choice(len(events), size=2, replace=False).tolist())
            a, b = (i, j) if rng.integers(2) else (j, i)
            text = ORDER_QUESTION.format(a=events[a]["shape"], b=events[b]["shape"])
            out.append((kind, text, events[i]["shape"], [i, j]))
        else:
            out.append((kind, COUNT_QUESTION, str(len(events)), list(range(len(events)))))
    return out


def check_events_arguments(
    *, duration, fps, event_duration, events, stripes, kinds, window, sample_fps, max_frames
) -> None:
    """Every argument checked before a frame is drawn (``ValueError`` naming the value and the fix)."""
    check_positive(duration=duration, fps=fps, event_duration=event_duration, window=window,
                   sample_fps=sample_fps, max_frames=max_frames)  # fmt: skip
    low, high = events
    if not 1 <= low <= high <= len(SHAPES):
        raise ValueError(f"events must be (min, max) with 1 ≤ min ≤ max ≤ {len(SHAPES)}, got {events}")
    if not 1 <= stripes <= 4:
        raise ValueError(f"stripes must be in [1, 4], got {stripes}")
    if not kinds or set(kinds) - set(QUESTION_KINDS):
        raise ValueError(f"question kinds must be a non-empty subset of {QUESTION_KINDS}, got {list(kinds)}")
    if "order" in kinds and low < 2:
        raise ValueError(f"'order' questions need two events per video: set events' min ≥ 2, got {events}")
    slots = int((0.9 * duration) // (2 * event_duration))
    if slots < high:
        raise ValueError(
            f"{high} events of {event_duration} s need a video of at least "
            f"{high * 2 * event_duration / 0.9:.1f} s (each event gets its own slot of twice its length), "
            f"got duration {duration}"
        )


def make_events_dataset(
    out_dir: str | Path,
    num_videos: int = 8,
    *,
    split: str = "train",
    duration: float = 24.0,
    fps: float = 2.0,
    size: tuple[int, int] = (96, 128),
    event_duration: float = 2.0,
    events: tuple[int, int] = (2, 4),
    stripes: int = 2,
    question_kinds: Sequence[str] = QUESTION_KINDS,
    window: int = 4,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    codec: str = DEFAULT_CODEC,
    seed: int = 0,
) -> Path:
    """Write ``num_videos`` event videos under ``out_dir/videos`` and ``out_dir/{split}.jsonl``.

    Each video (``size=(H, W)``, ``duration`` s at ``fps``) shows between ``events[0]`` and
    ``events[1]`` events of ``event_duration`` s, each a different shape with ``stripes`` colours
    drawn at random (repeats allowed). Each video gets one open-answer row per kind in
    ``question_kinds`` (see the module docstring). ``needle_segment``/``needle_segments`` are segment
    indices at ``window`` frames per segment under ``sample_fps`` sampling. Splits draw from
    independent streams of the same ``seed``.

    Returns:
        the annotation file's path (video paths in it are relative to ``out_dir``).
    """
    check_events_arguments(duration=duration, fps=fps, event_duration=event_duration, events=events,
                           stripes=stripes, kinds=question_kinds, window=window, sample_fps=sample_fps,
                           max_frames=max_frames)  # fmt: skip
    if num_videos < 0:
        raise ValueError(f"num_videos must be ≥ 0, got {num_videos}")
    out_dir = Path(out_dir)
    height, width = size
    num_frames = int(round(duration * fps))
    rng = np.random.default_rng([seed, zlib.crc32(f"events/{split}".encode())])
    colour_names = list(COLOURS)
    rows = []
    for number in range(num_videos):
        count = int(rng.integers(events[0], events[1] + 1))
        shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))[:count]]
        starts = _event_starts(rng, count, duration, event_duration, fps)
        drawn = []
        for shape, start in zip(shapes, starts, strict=True):
            colours = [colour_names[i] for i in rng.integers(len(colour_names), size=stripes)]
            end = start + event_duration
            segment = needle_segment_index(
                (start + end) / 2, num_frames, fps, window=window, sample_fps=sample_fps, max_frames=max_frames
            )
            drawn.append({"shape": shape, "colours": colours, "start": start, "end": end, "segment": segment})
        paints = [striped_frame_paint(e["shape"], e["colours"], height, width) for e in drawn]
        background = _background(rng, height, width)

        def frames(background=background, drawn=drawn, paints=paints):
            for i in range(num_frames):
                t = i / fps
                frame = background(t)
                for event, paint in zip(drawn, paints, strict=True):
                    if event["start"] <= t < event["end"]:
                        shown = paint[..., 3] > 0
                        frame[shown] = paint[shown, :3]
                yield frame

        name = f"videos/events_{split}_{number:05d}.mp4"
        write_video(out_dir / name, frames(), fps, codec=codec)
        for kind, question, answer, asked in _questions(rng, drawn, question_kinds):
            first = drawn[asked[0]]
            asked_text = f"{question} {INSTRUCTIONS[kind]}"
            rows.append(
                {
                    "id": f"{split}-{number:05d}-{kind}",
                    "video": name,
                    "category": kind,
                    "duration": num_frames / fps,
                    "conversations": [
                        {"from": "human", "value": f"<video>\n{asked_text}"},
                        {"from": "gpt", "value": answer},
                    ],
                    "question": asked_text,
                    "answer": answer,
                    "question_type": "open",
                    "relevant_spans": [[drawn[i]["start"], drawn[i]["end"]] for i in asked],
                    "events": drawn,
                    "asked": asked,
                    "needle_start": first["start"],
                    "needle_end": first["end"],
                    "needle_time": (first["start"] + first["end"]) / 2,
                    "needle_segment": first["segment"],
                    "needle_segments": sorted({drawn[i]["segment"] for i in asked}),
                    "window": window,
                    "sample_fps": sample_fps,
                }
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    annotation = out_dir / f"{split}.jsonl"
    with atomic_file(annotation) as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return annotation


def event_segment_frames(
    rng: np.random.Generator,
    shape: str,
    colours: Sequence[str],
    *,
    size: tuple[int, int] = (64, 64),
    window: int = 4,
    fps: float = DEFAULT_SAMPLE_FPS,
) -> np.ndarray:
    """uint8 ``[window, H, W, 3]``: one segment of ``window`` frames showing ``shape`` striped in
    ``colours`` (top to bottom) over a drifting background drawn from ``rng``.

    The unit that long videos are spliced from: the compressor sees one segment at a time, so a
    video made of such segments in any order is what a real video of those moments would give it,
    and a segment's memory can be computed once and reused in every video it is spliced into.
    """
    height, width = size
    paint = striped_frame_paint(shape, colours, height, width)
    shown = paint[..., 3] > 0
    background = _background(rng, height, width)
    start = float(rng.uniform(0, 60))
    frames = np.stack([background(start + i / fps) for i in range(window)])
    frames[:, shown] = paint[shown, :3]
    return frames
