"""Table 2's two training stages on the spliced task (:mod:`table2_task`), in-process and seeded.

1. **router stage** — the SVLM (and its relevance direction) learns, with the router stage's
   class-balanced BCE (:func:`tempo_kit.training.router.balanced_bce`) under the routing prompt,
   whether a segment shows the shape the question names. Pairs are balanced: every step scores
   segments under the question of their own shape and under another one, so a score that ignores
   the question cannot win.
2. **answer stage** on the router-stage compressor, which is then frozen: its memory is cached once
   and the projector and LLM learn to answer from it (the issue's third option for a router stage
   that does not hurt answers: the answer stage reads the memory it will be served). Videos grow
   from 2 segments to ``N`` over the first ``curriculum`` share of steps (short-to-long); with
   ``augment > 0`` that share of batches is trained on a random allocation (allocator and budget
   drawn per batch) instead of all ``k_max`` tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from table2_task import (
    BLANK,
    QUESTIONS,
    PoolCache,
    SegmentPool,
    clip_segments,
    compressed_of,
    splice,
    train_batch,
)

#: allocators an augmented batch draws from (each with a budget between N·k_min and N·k_max)
AUGMENT_ALLOCATORS = ({"name": "ata", "mode": "exact"}, {"name": "uniform"}, {"name": "topk"}, {"name": "random"})


@dataclass
class RouterSettings:
    steps: int = 150
    batch: int = 16  # segments per step, each scored under two questions
    lr: float = 1.0e-2
    direction_lr: float = 5.0e-2  # the relevance direction alone: one vector, larger steps
    #: negatives per step: the same segments under another shape's question ("questions"),
    #: background segments ("blanks") or both; only "questions" forces the score to read the question
    negatives: str = "both"


@dataclass
class AnswerSettings:
    steps: int = 1200
    batch: int = 8
    lr: float = 3.0e-3
    num_segments: int = 16
    curriculum: float = 0.5  # share of steps over which videos grow from 2 to num_segments segments
    augment: float = 0.0  # share of batches trained under a random allocation
    k_min: int = 4
    distractors: int | None = 0  # other shapes per training video (None: every other segment)


def train_router(
    model, pool: SegmentPool, settings: RouterSettings, generator: torch.Generator, progress=print
) -> list[float]:
    """The SVLM and its relevance direction learn question-conditioned relevance; returns the loss curve.

    Each step scores ``batch`` shape segments under their own shape's question (positives) and,
    as negatives, the same segments under another shape's question and/or (if the pool has any)
    background-only segments under a random question (``settings.negatives``): ``batch // 2`` of
    them with both kinds, ``batch`` with blanks alone.
    """
    from tempo_kit.model.inference_batch import inference_batch
    from tempo_kit.training.router import balanced_bce, make_direction_trainable

    compressor = model.compressor
    make_direction_trainable(compressor)
    compressor.train()
    parameters = [p for p in compressor.parameters() if p.is_floating_point()]
    for p in parameters:
        p.requires_grad_(True)
    direction = compressor.relevance_direction
    rest = [p for p in parameters if p is not direction]
    optimiser = torch.optim.AdamW([{"params": rest, "lr": settings.lr, "base": settings.lr},
                                   {"params": [direction], "lr": settings.direction_lr, "base": settings.direction_lr}],
                                  weight_decay=0.0)  # fmt: skip
    losses = []
    shaped, blanks = torch.nonzero(pool.shapes != BLANK).flatten(), pool.of_shape(BLANK)
    for step in range(settings.steps):
        index = shaped[torch.randint(len(shaped), (settings.batch,), generator=generator)]
        own = pool.shapes[index]
        chosen, asked = [index], [own]
        if settings.negatives in ("questions", "both"):
            chosen.append(index)
            asked.append((own + torch.randint(1, len(QUESTIONS), (settings.batch,), generator=generator)) % len(QUESTIONS))
        if settings.negatives in ("blanks", "both") and len(blanks):
            count = settings.batch // 2 if settings.negatives == "both" else settings.batch
            chosen.append(blanks[torch.randint(len(blanks), (count,), generator=generator)])
            asked.append(torch.randint(len(QUESTIONS), (count,), generator=generator))
        chosen, asked = torch.cat(chosen), torch.cat(asked)
        segments = [clip_segments(pool.frames[i : i + 1], consecutive=False) for i in chosen]
        batch = inference_batch(model.tokenizer, segments, [QUESTIONS[q] for q in asked])
        relevance = model.compress(batch, system_prompt="routing").relevance
        labels = torch.cat([torch.ones(settings.batch), torch.zeros(len(chosen) - settings.batch)])
        loss = balanced_bce(relevance, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        for group in optimiser.param_groups:
            group["lr"] = group["base"] * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
        optimiser.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, settings.steps // 10) == 0:
            progress(f"  router stage step {step + 1}/{settings.steps}: loss {sum(losses[-10:]) / len(losses[-10:]):.3f}")
    for p in parameters:
        p.requires_grad_(False)
    compressor.eval()
    return losses


def segments_at(step: int, settings: AnswerSettings) -> int:
    """Short-to-long curriculum: 2 segments at step 0, ``num_segments`` from ``curriculum·steps`` on."""
    ramp = settings.curriculum * settings.steps
    if ramp <= 0 or step >= ramp:
        return settings.num_segments
    return 2 + int((settings.num_segments - 2) * step / ramp)


def train_answer(
    model, pool: SegmentPool, cache: PoolCache, settings: AnswerSettings, generator: torch.Generator, progress=print
) -> list[float]:
    """Projector and LLM learn to answer from the frozen compressor's cached memory; returns the loss curve."""
    trainable = [*model.projector.parameters(), *model.decoder.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    model.projector.train()
    model.decoder.train()
    optimiser = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.0)
    k_max = cache.memory.shape[2]
    losses, start = [], time.perf_counter()
    for step in range(settings.steps):
        n = segments_at(step, settings)
        distractors = None if settings.distractors is None else min(settings.distractors, n - 1)
        videos = splice(pool, settings.batch, n, generator, distractors)
        batch = train_batch(model.tokenizer, pool, videos)
        compressed = compressed_of(videos, cache)
        allocation: dict = {}
        if settings.augment > 0 and float(torch.rand(1, generator=generator)) < settings.augment:
            choice = int(torch.randint(len(AUGMENT_ALLOCATORS), (1,), generator=generator))
            budget = int(torch.randint(n * settings.k_min, n * k_max + 1, (1,), generator=generator))
            allocation = {"allocate": True, "allocator": AUGMENT_ALLOCATORS[choice], "budget": budget,
                          "k_min": settings.k_min}  # fmt: skip
        loss = model(batch, compressed=compressed, **allocation).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        warm = min(1.0, (step + 1) / max(1, settings.steps // 30))
        for group in optimiser.param_groups:
            group["lr"] = settings.lr * warm * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
        optimiser.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, settings.steps // 10) == 0:
            recent = sum(losses[-50:]) / len(losses[-50:])
            progress(f"  answer stage step {step + 1}/{settings.steps} ({n} segments): loss {recent:.3f}, "
                     f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    model.eval()
    for p in trainable:
        p.requires_grad_(False)
    return losses
