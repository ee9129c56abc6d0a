"""Table 2's training stages on the spliced task (:mod:`table2_task`), in-process and seeded.

1. **joint stage** (:func:`train_joint`, what ``table2_router.py`` runs) — every part learns at
   once on short videos: the answer loss on the one shape among background segments (after a first
   share of one-segment videos) and, with the router objective's class-balanced BCE
   (:func:`tempo_kit.training.router.balanced_bce`), relevance on videos whose every segment is a
   shape, so only the question tells the needle. Memory and relevance come from one SVLM pass
   under the routing prompt: the memory the LLM learns to read is the one it will be served.
2. **answer stage** (:func:`train_answer`) on the joint-stage compressor, then frozen: its memory
   is cached once and the projector and LLM learn long videos from it. Videos grow from 2 segments
   to ``N`` over the first ``curriculum`` share of steps (short-to-long); with ``augment > 0`` that
   share of batches is trained on a random allocation (allocator and budget drawn per batch)
   instead of all ``k_max`` tokens.

:func:`train_router` is the relevance alone (no answer loss), which ``table2_routing.py`` measures:
pairs are balanced, every step scoring segments under their own shape's question and another's.
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
AUGMENT_ALLOCATORS = (
    {"name": "ata", "mode": "exact"},
    {"name": "uniform"},
    {"name": "topk"},
    {"name": "random"},
)


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
class JointSettings:
    """The whole model on short videos: answer loss plus the router objective, together."""

    steps: int = 600
    batch: int = 8
    segments: int = 2  # a needle and other shapes: only the question tells them apart
    lr: float = 1.0e-3  # the SVLM
    head_lr: float = 3.0e-3  # memory tokens, projector, LLM
    direction_lr: float = 5.0e-2
    router_weight: float = 1.0
    #: share of steps on one-segment videos first (the colour read off a lone shape), before the
    #: needle must be told from other shapes by the question
    single: float = 0.25


@dataclass
class AnswerSettings:
    steps: int = 300
    batch: int = 8
    lr: float = 3.0e-3
    num_segments: int = 8
    curriculum: float = 0.5  # share of steps over which videos grow from 2 to num_segments segments
    augment: float = 0.0  # share of batches trained under a random allocation
    k_min: int = 4
    distractors: int | None = 0  # other shapes per training video (None: every other segment)


def optimiser_step(optimiser, loss, parameters, step: int, steps: int, warmup_steps: int | None = None) -> None:
    """One AdamW step after clipping the gradient norm to 1, every group at its ``base`` rate times a
    linear warm-up (``warmup_steps``, by default the first thirtieth of the steps) and a cosine decay."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    warm = min(1.0, (step + 1) / max(1, steps // 30 if warmup_steps is None else warmup_steps))
    for group in optimiser.param_groups:
        group["lr"] = group["base"] * warm * 0.5 * (1 + math.cos(math.pi * step / steps))
    optimiser.step()


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
            asked.append(
                (own + torch.randint(1, len(QUESTIONS), (settings.batch,), generator=generator))
                % len(QUESTIONS)
            )
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
        optimiser_step(optimiser, loss, parameters, step, settings.steps, warmup_steps=0)
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, settings.steps // 10) == 0:
            progress(
                f"  router stage step {step + 1}/{settings.steps}: loss {sum(losses[-10:]) / len(losses[-10:]):.3f}"
            )
    for p in parameters:
        p.requires_grad_(False)
    compressor.eval()
    return losses


def train_joint(
    model, pool: SegmentPool, settings: JointSettings, generator: torch.Generator, progress=print
) -> list[float]:
    """Every part learns at once: the answer from the SVLM's memory and the question-conditioned
    relevance (class-balanced BCE against the needle), on videos of ``settings.segments`` shapes.

    Relevance and memory come from the same SVLM pass under the routing prompt (what inference
    compresses with), so the memory the LLM learns to read is the memory it will be served.
    """
    from tempo_kit.compressors.qwen3_vl import resolve_prompt
    from tempo_kit.model.inference_batch import inference_batch
    from tempo_kit.training.router import balanced_bce, make_direction_trainable

    compressor = model.compressor
    compressor.train_prompt = resolve_prompt("routing")
    direction = make_direction_trainable(compressor)
    trainable = [p for p in model.parameters() if p.is_floating_point()]
    for p in trainable:
        p.requires_grad_(True)
    svlm = [p for n, p in compressor.named_parameters() if p.is_floating_point() and p is not direction
            and "memory" not in n]  # fmt: skip
    ids = {id(p) for p in svlm} | {id(direction)}
    head = [p for p in trainable if id(p) not in ids]
    groups = [{"params": svlm, "base": settings.lr}, {"params": head, "base": settings.head_lr},
              {"params": [direction], "base": settings.direction_lr}]  # fmt: skip
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=0.0)
    model.train()
    losses, start = [], time.perf_counter()
    for step in range(settings.steps):
        single = step < settings.single * settings.steps
        # the answer: the one shape among background segments
        videos = splice(pool, settings.batch, 1 if single else settings.segments, generator, 0)
        output = model(train_batch(model.tokenizer, pool, videos))
        loss = output.loss
        if not single:
            # the relevance: the asked shape among other shapes, which only the question tells apart
            crowded = splice(pool, settings.batch, settings.segments, generator, None)
            batch = inference_batch(model.tokenizer, [clip_segments(pool.frames[v.segments], consecutive=True)
                                                      for v in crowded], [v.question for v in crowded])  # fmt: skip
            scores = torch.cat([output.relevance, model.compress(batch).relevance])
            labels = torch.cat([v.labels() for v in [*videos, *crowded]])
            loss = loss + settings.router_weight * balanced_bce(scores, labels)
        optimiser_step(optimiser, loss, trainable, step, settings.steps)
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, settings.steps // 10) == 0:
            recent = sum(losses[-20:]) / len(losses[-20:])
            progress(f"  joint stage step {step + 1}/{settings.steps}: loss {recent:.3f}, "
                     f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    for p in trainable:
        p.requires_grad_(False)
    model.eval()
    return losses


def segments_at(step: int, settings: AnswerSettings) -> int:
    """Short-to-long curriculum: 2 segments at step 0, ``num_segments`` from ``curriculum·steps`` on."""
    ramp = settings.curriculum * settings.steps
    if ramp <= 0 or step >= ramp:
        return settings.num_segments
    return 2 + int((settings.num_segments - 2) * step / ramp)


def train_answer(
    model,
    pool: SegmentPool,
    cache: PoolCache,
    settings: AnswerSettings,
    generator: torch.Generator,
    progress=print,
) -> list[float]:
    """Projector and LLM learn to answer from the frozen compressor's cached memory; returns the loss curve."""
    trainable = [*model.projector.parameters(), *model.decoder.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    model.projector.train()
    model.decoder.train()
    optimiser = torch.optim.AdamW([{"params": trainable, "base": settings.lr}], lr=settings.lr, weight_decay=0.0)
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
        optimiser_step(optimiser, loss, trainable, step, settings.steps)
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, settings.steps // 10) == 0:
            recent = sum(losses[-50:]) / len(losses[-50:])
            progress(f"  answer stage step {step + 1}/{settings.steps} ({n} segments): loss {recent:.3f}, "
                     f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    model.eval()
    for p in trainable:
        p.requires_grad_(False)
    return losses
