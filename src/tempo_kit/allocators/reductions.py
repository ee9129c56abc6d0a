"""Intra-segment token reductions (paper Table 2C): which ``k`` of a segment's memory tokens remain.

Each is registered in ``REDUCTIONS`` and called as ``reduce(memory [n, d], k, **kw) -> [min(k, n), d]``.
Head truncation is the paper's default: the causal compressor front-loads what matters.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tempo_kit.errors import ConfigError
from tempo_kit.registry import REDUCTIONS, check_kwargs


def _check(memory: Tensor, k: object, where: str) -> int:
    if not isinstance(memory, Tensor) or memory.dim() != 2:
        shape = tuple(memory.shape) if isinstance(memory, Tensor) else type(memory).__name__
        raise ConfigError(f"reduction {where!r}: memory must be a [n, d] tensor (one segment), got {shape}")
    try:
        k = operator.index(k)
    except TypeError:
        raise ConfigError(f"reduction {where!r}: k must be an integer token count, got {k!r}") from None
    if k < 0:
        raise ConfigError(f"reduction {where!r}: k={k} must be ≥ 0 (0 drops the segment)")
    return k


@REDUCTIONS.register("head")
def head(memory: Tensor, k: int) -> Tensor:
    """Keep the first ``k`` tokens (the paper's dynamic head truncation): ``memory[:k]``."""
    k = _check(memory, k, "head")
    return memory[:k]


@REDUCTIONS.register("tail")
def tail(memory: Tensor, k: int) -> Tensor:
    """Keep the last ``k`` tokens (Table 2C's tail truncation ablation)."""
    k = _check(memory, k, "tail")
    return memory[max(memory.shape[0] - k, 0) :]


@REDUCTIONS.register("random")
def random(memory: Tensor, k: int, seed: int = 0, generator: torch.Generator | None = None) -> Tensor:
    """Keep ``k`` tokens chosen at random, in their original order.

    Args:
        seed: seeds a fresh generator when ``generator`` is None (same seed, same choice).
        generator: a generator to draw from instead, e.g. one shared across segments.
    """
    k = _check(memory, k, "random")
    n = memory.shape[0]
    if k >= n:
        return memory
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    kept = torch.randperm(n, generator=generator)[:k].sort().values
    return memory[kept.to(memory.device)]


@REDUCTIONS.register("merge")
def merge(memory: Tensor, k: int) -> Tensor:
    """Bipartite soft matching (ToMe, Bolya et al. 2023) until exactly ``k`` tokens remain.

    Each round splits the tokens alternately into sets A (even positions) and B (odd), matches
    every A token to its most cosine-similar B token, and merges the most similar pairs into
    their B partner as a size-weighted average (so a merged token is the mean of the original
    tokens it absorbed). Survivors keep their temporal order; a merged token sits at its B
    partner's place. ``k ≥ n`` returns ``memory`` itself. O(n²·d) per round, O(log n) rounds.
    """
    k = _check(memory, k, "merge")
    n = memory.shape[0]
    if k >= n:
        return memory
    if k == 0:
        return memory[:0]
    tokens = memory.float()
    sizes = torch.ones(n, 1, dtype=torch.float32, device=memory.device)
    while tokens.shape[0] > k:
        count = tokens.shape[0]
        a_idx = torch.arange(0, count, 2, device=memory.device)
        b_idx = torch.arange(1, count, 2, device=memory.device)
        merges = min(count - k, a_idx.numel())
        normed = F.normalize(tokens, dim=-1)
        similarity = normed[a_idx] @ normed[b_idx].T  # [|A|, |B|]
        best, partner = similarity.max(dim=-1)
        merged_a = torch.argsort(best, descending=True, stable=True)[:merges]
        weighted = tokens * sizes
        target = b_idx[partner[merged_a]]
        src = a_idx[merged_a]
        weighted = weighted.index_add(0, target, weighted[src])
        sizes = sizes.index_add(0, target, sizes[src])
        keep = torch.ones(count, dtype=torch.bool, device=memory.device)
        keep[src] = False
        sizes = sizes[keep]
        tokens = weighted[keep] / sizes
    return tokens.to(memory.dtype)


def reduce_tokens(memory: Tensor, counts: Tensor, method: str = "head", **kwargs: Any) -> list[Tensor]:
    """Apply reduction ``method`` to every segment: ``memory[i]`` keeps ``counts[i]`` tokens.

    Args:
        memory: ``[S, k_max, d]`` compressed memories of one video.
        counts: ``[S]`` integer tokens per segment (an allocator's output).
        method: a name in ``REDUCTIONS`` (``head``, ``tail``, ``merge``, ``random``, or a plugin).
        **kwargs: passed to the reduction (e.g. ``seed`` for ``random``).

    Returns:
        ``S`` tensors ``[counts[i], d]``; a 0-count segment gives an empty ``[0, d]`` tensor.
    """
    reduction = REDUCTIONS.get(method)
    check_kwargs(reduction, {"memory": None, "k": None, **kwargs}, where=f"reduction {method!r}")
    if not isinstance(memory, Tensor) or memory.dim() != 3:
        shape = tuple(memory.shape) if isinstance(memory, Tensor) else type(memory).__name__
        raise ConfigError(f"reduce_tokens: memory must be [S, k_max, d], got {shape}")
    counts = torch.as_tensor(counts)
    if counts.shape != (memory.shape[0],) or counts.is_floating_point():
        raise ConfigError(
            f"reduce_tokens: counts must be an integer tensor [S] = [{memory.shape[0]}], "
            f"got {counts.dtype} {tuple(counts.shape)}"
        )
    if len(counts) and (int(counts.min()) < 0 or int(counts.max()) > memory.shape[1]):
        raise ConfigError(
            f"reduce_tokens: counts must lie in [0, k_max={memory.shape[1]}], got "
            f"[{int(counts.min())}, {int(counts.max())}]; use an allocator's output"
        )
    return [reduction(segment, int(k), **kwargs) for segment, k in zip(memory, counts.tolist())]
