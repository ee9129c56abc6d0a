"""Deterministic synthetic videos: needle-in-a-haystack questions and frame-counter clips.

:func:`make_needle_dataset` writes real H.264 files (PyAV) of a long, slowly drifting background
with one short, salient event — a big coloured shape or a big digit — at a known time, plus a JSONL
annotation file of questions about it (multiple choice and open), with the answer, the event's time
and the index of the segment that holds it. Everything follows from ``seed``: the same call writes
the same videos and rows. The demo recipe, the tests, the docs and the benchmarks use it.

:func:`write_counter_video` writes clips whose every frame shows its own index as a binary code, so a
test can check that a decoder returned exactly the frames it was asked for
(:func:`read_counter`).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from tempo_kit.video.sampling import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SAMPLE_FPS,
    num_sampled_frames,
    sample_indices,
)

#: Encoder settings; ``threads=1`` keeps the bytes reproducible.
DEFAULT_CODEC = "libx264"
DEFAULT_ENCODER_OPTIONS = {"preset": "veryfast", "crf": "20", "threads": "1"}

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (20, 200, 40),
    "blue": (30, 60, 235),
    "yellow": (245, 225, 20),
    "magenta": (220, 30, 220),
    "cyan": (20, 215, 225),
    "orange": (250, 130, 10),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "cross")
DIGITS = tuple(str(d) for d in range(10))
CATEGORIES = ("colour", "shape", "digit")
QUESTIONS = {
    "colour": "What colour was the shape that appeared in the video?",
    "shape": "What shape appeared in the video?",
    "digit": "Which digit appeared in the video?",
}
OPTION_LETTERS = "ABCDEFGH"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer with one word."

# Seven-segment layout: segment -> (row0, col0, row1, col1) in a 5×3 grid of cells.
_SEGMENT_BOXES = {
    "a": (0, 0, 1, 3), "b": (0, 2, 3, 3), "c": (2, 2, 5, 3), "d": (4, 0, 5, 3),
    "e": (2, 0, 5, 1), "f": (0, 0, 3, 1), "g": (2, 0, 3, 3),
}  # fmt: skip
_DIGIT_SEGMENTS = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"]


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    *,
    codec: str = DEFAULT_CODEC,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    presentation_ms: Sequence[int] | None = None,
) -> Path:
    """Encode uint8 ``[H, W, 3]`` RGB frames into ``path`` with PyAV (container from the suffix).

    ``presentation_ms`` gives frame ``k`` the presentation time ``presentation_ms[k]`` milliseconds
    instead of ``k / fps``: a variable-frame-rate file (gaps, bursts), ``fps`` then only its nominal rate.
    """
    import av

    path = Path(path)
    millisecond = Fraction(1, 1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = None
        for written, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt
                if options is None and codec == DEFAULT_CODEC:
                    stream.options = dict(DEFAULT_ENCODER_OPTIONS)
                elif options:
                    stream.options = dict(options)
                if presentation_ms is not None:
                    stream.time_base = stream.codec_context.time_base = millisecond
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if presentation_ms is not None:
                video_frame.pts, video_frame.time_base = int(presentation_ms[written]), millisecond
            for packet in stream.encode(video_frame):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
    return path


# ---------------------------------------------------------------- frame-counter clips

COUNTER_BITS = 12


def counter_frame(index: int, height: int, width: int) -> np.ndarray:
    """A frame showing ``index`` as 12 black/white cells (robust to compression) over a gradient."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    frame[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    frame[..., 2] = (index * 37) % 256
    band = max(1, height // 2)
    for bit in range(COUNTER_BITS):
        x0, x1 = bit * width // COUNTER_BITS, (bit + 1) * width // COUNTER_BITS
        frame[:band, x0:x1] = 255 if (index >> bit) & 1 else 0
    return frame


def read_counter(frame: np.ndarray) -> int:
    """Recover the index drawn by :func:`counter_frame` (from any resized copy of it)."""
    height, width = frame.shape[:2]
    band = frame[: max(1, height // 2)].astype(np.float64).mean(axis=(0, 2))
    value = 0
    for bit in range(COUNTER_BITS):
        x0, x1 = bit * width // COUNTER_BITS, (bit + 1) * width // COUNTER_BITS
        inner = band[x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4] if x1 - x0 >= 4 else band[x0:x1]
        value |= int(inner.mean() > 127) << bit
    return value


def write_counter_video(
    path: str | Path, num_frames: int, fps: float, size: tuple[int, int] = (96, 128), **kwargs
) -> Path:
    """A clip of ``num_frames`` :func:`counter_frame` frames at ``fps``; ``size=(H, W)``."""
    height, width = size
    return write_video(path, (counter_frame(i, height, width) for i in range(num_frames)), fps, **kwargs)


# ---------------------------------------------------------------- needle drawing


def _shape_mask(shape: str, height: int, width: int, fill: float) -> np.ndarray:
    """Boolean mask of a centred shape whose size is ``fill`` × the short side."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx, r = (height - 1) / 2, (width - 1) / 2, fill * min(height, width) / 2
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= r * 0.9) & (np.abs(dx) <= r * 0.9)
    if shape == "triangle":
        top, bottom = -r, r * 0.8
        half_width = (dy - top) / (bottom - top) * r * 1.1
        return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= half_width)
    if shape == "cross":
        arm = r * 0.3
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


def _digit_mask(digit: str, height: int, width: int, fill: float) -> np.ndarray:
    """Boolean mask of a seven-segment ``digit``, ``fill`` × the frame height tall."""
    mask = np.zeros((height, width), dtype=bool)
    cell = max(1, int(fill * height / 5))
    top, left = (height - 5 * cell) // 2, (width - 3 * cell) // 2
    for segment in _DIGIT_SEGMENTS[int(digit)]:
        r0, c0, r1, c1 = _SEGMENT_BOXES[segment]
        mask[top + r0 * cell : top + r1 * cell, left + c0 * cell : left + c1 * cell] = True
    return mask


def _background(rng: np.random.Generator, height: int, width: int):
    """A dim, slowly drifting two-tone texture; returns ``frame_at(t_seconds)``."""
    base = rng.uniform(40, 90, size=3)
    tint = rng.uniform(-25, 25, size=3)
    freq = rng.uniform(1.0, 3.0, size=2)
    speed = rng.uniform(0.02, 0.06)
    yy, xx = np.mgrid[0:height, 0:width]
    v, u = yy / height, xx / width

    def frame_at(t: float) -> np.ndarray:
        wave = np.sin(2 * np.pi * (freq[0] * u + speed * t)) * np.cos(2 * np.pi * (freq[1] * v - speed * t))
        return np.clip(base + wave[..., None] * tint, 0, 255).astype(np.uint8)

    return frame_at


# ---------------------------------------------------------------- the dataset


def check_positive(**values: float) -> None:
    """Raise ``ValueError`` naming the first value that is not a finite number > 0.

    Checked before any frame is drawn: a zero frame rate or window would otherwise end in a
    ``ZeroDivisionError`` halfway through writing the videos.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def needle_segment_index(
    needle_time: float,
    num_frames: int,
    fps: float,
    *,
    window: int,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> int:
    """Index of the segment whose sampled frame is nearest ``needle_time`` (compatibility §1 sampling)."""
    count = num_sampled_frames(num_frames / fps, sample_fps, max_frames=max_frames)
    times = sample_indices(num_frames, count) / fps
    return int(np.argmin(np.abs(times - needle_time))) // window


def make_needle_dataset(
    out_dir: str | Path,
    num_videos: int = 8,
    *,
    split: str = "train",
    duration: float = 40.0,
    fps: float = 8.0,
    size: tuple[int, int] = (96, 128),
    needle_duration: float = 3.0,
    categories: Sequence[str] = CATEGORIES,
    num_options: int = 4,
    question_types: Sequence[str] = ("mc", "open"),
    window: int = 4,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    codec: str = DEFAULT_CODEC,
    seed: int = 0,
) -> Path:
    """Write ``num_videos`` needle videos under ``out_dir/videos`` and ``out_dir/{split}.jsonl``.

    Each video (``size=(H, W)``, ``duration`` s at ``fps``) shows a background and, for
    ``needle_duration`` s at a random time in the middle 80 %, a shape (``colour``/``shape``
    categories) or a digit filling most of the frame. Each video gets one row per question type:
    ``"mc"`` (the human turn lists lettered options and asks for the letter; gpt answers the
    letter) and ``"open"`` (one-word answer). Rows carry ``question``, ``options``, ``answer``,
    ``needle_time`` (the event's centre, s), ``needle_start``/``needle_end``,
    ``relevant_spans`` (``[[needle_start, needle_end]]``, the router stage's labels), ``needle_segment``
    (index at ``window`` frames per segment, ``sample_fps`` sampling), ``window``, ``category``,
    ``duration``. Splits draw from independent streams of the same ``seed``.

    Returns:
        the annotation file's path (video paths in it are relative to ``out_dir``).
    """
    check_positive(duration=duration, fps=fps, needle_duration=needle_duration, window=window,
                   sample_fps=sample_fps, max_frames=max_frames)  # fmt: skip
    if num_videos < 0:
        raise ValueError(f"num_videos must be ≥ 0, got {num_videos}")
    unknown = set(categories) - set(CATEGORIES)
    if unknown or not categories:
        raise ValueError(f"categories must be a non-empty subset of {CATEGORIES}, got {list(categories)}")
    if not 2 <= num_options <= len(OPTION_LETTERS):
        raise ValueError(f"num_options must be in [2, {len(OPTION_LETTERS)}], got {num_options}")
    if not set(question_types) <= {"mc", "open"} or not question_types:
        raise ValueError(f"question_types must be a non-empty subset of ('mc', 'open'), got {question_types}")
    if needle_duration >= duration * 0.8:
        raise ValueError(f"needle_duration {needle_duration} s must be < 80% of duration {duration} s")
    out_dir = Path(out_dir)
    height, width = size
    num_frames = int(round(duration * fps))
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    rows = []
    for number in range(num_videos):
        category = categories[number % len(categories)]
        colour_names = list(COLOURS)
        colour = colour_names[rng.integers(len(colour_names))]
        shape = SHAPES[rng.integers(len(SHAPES))]
        digit = DIGITS[rng.integers(len(DIGITS))]
        start = float(rng.uniform(0.1 * duration, 0.9 * duration - needle_duration))
        start = round(start * fps) / fps
        end = start + needle_duration
        choices = {"colour": colour_names, "shape": list(SHAPES), "digit": list(DIGITS)}[category]
        answer_text = {"colour": colour, "shape": shape, "digit": digit}[category]
        distractors = [c for c in choices if c != answer_text]
        options = [answer_text] + list(rng.choice(distractors, size=num_options - 1, replace=False))
        options = [options[i] for i in rng.permutation(num_options)]
        background = _background(rng, height, width)
        if category == "digit":
            mask, paint = _digit_mask(digit, height, width, 0.8), COLOURS[colour]
        else:
            mask, paint = _shape_mask(shape, height, width, 0.8), COLOURS[colour]

        def frames(background=background, mask=mask, paint=paint, start=start, end=end):
            for i in range(num_frames):
                t = i / fps
                frame = background(t)
                if start <= t < end:
                    frame[mask] = paint
                yield frame

        name = f"videos/{split}_{number:05d}.mp4"
        write_video(out_dir / name, frames(), fps, codec=codec)
        centre = (start + end) / 2
        common = {
            "video": name,
            "category": category,
            "duration": num_frames / fps,
            "needle_time": centre,
            "needle_start": start,
            "needle_end": end,
            "relevant_spans": [[start, end]],
            "needle_segment": needle_segment_index(
                centre, num_frames, fps, window=window, sample_fps=sample_fps, max_frames=max_frames
            ),
            "window": window,
            "sample_fps": sample_fps,
        }
        question = QUESTIONS[category]
        if "mc" in question_types:
            letter = OPTION_LETTERS[options.index(answer_text)]
            lettered = "\n".join(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(options))
            rows.append(
                {
                    "id": f"{split}-{number:05d}-mc",
                    **common,
                    "conversations": [
                        {"from": "human", "value": f"<video>\n{question}\n{lettered}\n{MC_INSTRUCTION}"},
                        {"from": "gpt", "value": letter},
                    ],
                    "question": question,
                    "options": options,
                    "answer": letter,
                    "answer_text": answer_text,
                    "question_type": "mc",
                }
            )
        if "open" in question_types:
            rows.append(
                {
                    "id": f"{split}-{number:05d}-open",
                    **common,
                    "conversations": [
                        {"from": "human", "value": f"<video>\n{question} {OPEN_INSTRUCTION}"},
                        {"from": "gpt", "value": answer_text},
                    ],
                    "question": f"{question} {OPEN_INSTRUCTION}",
                    "answer": answer_text,
                    "question_type": "open",
                }
            )
    annotation = out_dir / f"{split}.jsonl"
    with open(annotation, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return annotation
