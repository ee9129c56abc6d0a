"""Table 2's CPU task: long videos spliced from 2-s segments, the question naming the one that matters.

Each segment (4 frames at 2 fps, :func:`~tempo_kit.data.synthetic_events.event_segment_frames`)
shows one big shape (circle, square, triangle or cross) painted in ``stripes`` horizontal colour
stripes, or background only (:data:`BLANK`). A video of ``N`` segments asks "What colours were
the stripes of the <shape>, from top to bottom?": the named shape appears in exactly one segment
(the needle); :func:`splice` fills the others with other shapes (all of them, or ``distractors``)
and background. Where every segment is a shape, every segment is as bright and as colourful as the
needle, so a score that looks only at the pixels (saturation) or at the position cannot find it;
only the question can. The answer is a sequence of colours (8 colours, ``stripes`` of them: chance
8^-stripes).

The compressor sees one segment at a time (with the question), so a segment's memory and relevance
under each of the four questions are computed once (:func:`cache_pool`) and every video spliced from
the pool reuses them. The SVLM sees each segment with its own clip times (0–1.5 s); the LLM's time
tags follow the segment's place in the video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tempo_kit.data.synthetic import COLOURS, SHAPES, _background
from tempo_kit.data.synthetic_events import COLOURS_QUESTION, INSTRUCTIONS, event_segment_frames
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, CompressorOutput, Segments, TempoBatch

#: frames per segment and the sampling rate (the paper's training windows: 4 frames at 2 fps)
WINDOW, FPS = 4, 2.0
#: the shape index of a background-only segment
BLANK = -1


def question(shape: str) -> str:
    return f"{COLOURS_QUESTION.format(shape=shape)} {INSTRUCTIONS['colours']}"


QUESTIONS = [question(shape) for shape in SHAPES]


@dataclass
class SegmentPool:
    """``frames`` uint8 ``[M, WINDOW, H, W, 3]``; ``shapes[i]`` an index into ``SHAPES``, or
    :data:`BLANK` for a segment of background only."""

    frames: Tensor
    shapes: Tensor
    colours: list[list[str]]

    def of_shape(self, shape: int) -> Tensor:
        return torch.nonzero(self.shapes == shape).flatten()


def make_pool(count: int, *, seed: int, split: str, size: tuple[int, int], stripes: int, blanks: int = 0) -> SegmentPool:
    """``count`` shape segments, shapes in turn (balanced), colours drawn per stripe, then ``blanks``
    background-only segments; splits are independent streams."""
    rng = np.random.default_rng([seed, sum(map(ord, split))])
    names = list(COLOURS)
    shapes, colours, frames = [], [], []
    for i in range(count + blanks):
        shape = i % len(SHAPES) if i < count else BLANK
        drawn = [names[c] for c in rng.integers(len(names), size=stripes)] if i < count else []
        if i < count:
            frames.append(event_segment_frames(rng, SHAPES[shape], drawn, size=size, window=WINDOW, fps=FPS))
        else:
            background = _background(rng, *size)
            start = float(rng.uniform(0, 60))
            frames.append(np.stack([background(start + t / FPS) for t in range(WINDOW)]))
        shapes.append(shape)
        colours.append(drawn)
    return SegmentPool(torch.from_numpy(np.stack(frames)), torch.tensor(shapes), colours)


def clip_segments(frames: Tensor, *, consecutive: bool) -> Segments:
    """``frames`` ``[S, WINDOW, H, W, 3]`` as one video's consecutive segments, or each at its own clip times."""
    count = frames.shape[0]
    steps = torch.arange(count * WINDOW if consecutive else WINDOW, dtype=torch.float32) / FPS
    frame_times = steps.reshape(count, WINDOW) if consecutive else steps.expand(count, WINDOW)
    return Segments(frames, frame_times.contiguous(), frame_times.mean(dim=1))


@dataclass
class PoolCache:
    """Memory ``[Q, M, k_max, d]`` and relevance ``[Q, M]`` of every pool segment under each question."""

    memory: Tensor
    relevance: Tensor


@torch.no_grad()
def cache_pool(model, pool: SegmentPool, chunk: int = 64) -> PoolCache:
    """Every segment compressed under every question with the routing prompt (what inference uses)."""
    from tempo_kit.model.inference_batch import inference_batch

    memories, scores = [], []
    for text in QUESTIONS:
        parts = []
        for start in range(0, len(pool.frames), chunk):
            segments = clip_segments(pool.frames[start : start + chunk], consecutive=False)
            batch = inference_batch(model.tokenizer, [segments], [text])
            parts.append(model.compress(batch, system_prompt="routing"))
        memories.append(torch.cat([p.memory for p in parts]))
        scores.append(torch.cat([p.relevance for p in parts]))
    return PoolCache(torch.stack(memories), torch.stack(scores))


@dataclass
class Video:
    """A spliced video: pool indices in order, the asked shape and where its segment sits."""

    segments: Tensor
    shape: int
    needle: int
    answer: str

    @property
    def question(self) -> str:
        return QUESTIONS[self.shape]

    def labels(self) -> Tensor:
        labels = torch.zeros(len(self.segments))
        labels[self.needle] = 1.0
        return labels


def splice(
    pool: SegmentPool, count: int, num_segments: int, generator: torch.Generator, distractors: int | None = None
) -> list[Video]:
    """``count`` videos of ``num_segments`` segments: one needle of the asked shape, ``distractors``
    segments of other shapes at random places (``None``: every other segment), the rest background only."""
    videos = []
    blanks = pool.of_shape(BLANK)
    for _ in range(count):
        shape = int(torch.randint(len(SHAPES), (1,), generator=generator))
        needles = pool.of_shape(shape)
        others = torch.nonzero((pool.shapes != shape) & (pool.shapes != BLANK)).flatten()
        chosen = others[torch.randint(len(others), (num_segments,), generator=generator)]
        if distractors is not None:  # all but `distractors` places become background
            plain = torch.randperm(num_segments, generator=generator)[: num_segments - distractors]
            chosen[plain] = blanks[torch.randint(len(blanks), (len(plain),), generator=generator)]
        needle = int(torch.randint(num_segments, (1,), generator=generator))
        chosen[needle] = needles[torch.randint(len(needles), (1,), generator=generator)]
        videos.append(Video(chosen, shape, needle, " ".join(pool.colours[int(chosen[needle])])))
    return videos


def compressed_of(videos: list[Video], cache: PoolCache, relevance: list[Tensor] | None = None) -> CompressorOutput:
    """The cached compressor output of ``videos`` (``relevance`` replaces the cached scores, e.g. noised)."""
    memory = torch.cat([cache.memory[v.shape, v.segments] for v in videos])
    scores = torch.cat(relevance if relevance is not None else [cache.relevance[v.shape, v.segments] for v in videos])
    return CompressorOutput(memory, scores, [len(v.segments) for v in videos])


def video_segments(pool: SegmentPool, video: Video) -> Segments:
    """The video's frames with its own timeline (segment ``i`` centred at ``2i + 0.75`` s)."""
    return clip_segments(pool.frames[video.segments], consecutive=True)


def train_batch(tokenizer, pool: SegmentPool, videos: list[Video]) -> TempoBatch:
    """Teacher-forced prompts (question → colours), right-padded, as the kit's collator builds them."""
    encoded = [
        encode_decoder_prompt(tokenizer, [Turn("user", v.question), Turn("assistant", v.answer)], has_visual=True)
        for v in videos
    ]
    length = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(videos), length), pad, dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    mask = torch.zeros_like(input_ids)
    for row, (ids, row_labels) in enumerate(encoded):
        input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, row_labels, 1
    return TempoBatch(
        segments=[video_segments(pool, v) for v in videos],
        queries=[v.question for v in videos],
        input_ids=input_ids,
        labels=labels,
        attention_mask=mask,
        ids=[str(i) for i in range(len(videos))],
    )
