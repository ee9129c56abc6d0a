"""The question-independent prefix of a compressor sequence, kept to answer many questions.

In Tempo's SVLM sequence (system prompt, video segment, ``\\nQuery:\\n`` + question, generation
prompt, memory tokens) everything before the question is the same for every question: the vision
tower's output with its DeepStack features and the language model's keys and values over that
prefix. A compressor that implements :class:`PrefixCaching` computes that prefix once per segment
(:meth:`~PrefixCaching.encode_prefixes`) and then runs only the question, the generation prompt and
the memory tokens against it (:meth:`~PrefixCaching.compress_with_prefixes`). Attention is causal,
so the memory and relevance equal those of the full sequence; a compressor without it simply
recomputes everything (see :mod:`tempo_kit.inference.session`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from tempo_kit.types import Segments


@dataclass
class SegmentPrefix:
    """One segment's cached prefix: per-layer keys and values and where positions continue.

    Attributes:
        keys: one ``[kv_heads, length, head_dim]`` tensor per language-model layer.
        values: same shapes as ``keys``.
        next_position: position id of the first token after the prefix (Qwen3-VL's M-RoPE gives
            text after a visual block ``max(position) + 1`` on all three axes).
    """

    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    next_position: int

    @property
    def length(self) -> int:
        """Prefix tokens (the SVLM tokens a follow-up question does not recompute)."""
        return int(self.keys[0].shape[1])

    @property
    def nbytes(self) -> int:
        """Memory the cached keys and values take."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    def to(self, device: torch.device | str) -> SegmentPrefix:
        return SegmentPrefix(
            tuple(k.to(device) for k in self.keys), tuple(v.to(device) for v in self.values), self.next_position
        )


@dataclass
class PrefixCompression:
    """Memory and relevance of a micro-batch computed from cached prefixes.

    Attributes:
        memory: ``[B, k_max, d]``.
        relevance: ``[B]`` float32, or ``None`` for a query-agnostic compressor.
        tokens: SVLM tokens computed (question, generation prompt and memory tokens of every row).
        row_tokens: the same per row, when the compressor says (a batch of several questions'
            rows splits ``tokens`` by it); ``None``: not said.
    """

    memory: Tensor
    relevance: Tensor | None
    tokens: int
    row_tokens: list[int] | None = None


@runtime_checkable
class PrefixCaching(Protocol):
    """What a compressor offers to reuse its question-independent work across questions."""

    def prompt_for(self, system_prompt: str | None) -> str:
        """The text of a system prompt (a name, literal text, or ``None`` for the default)."""
        ...

    def encode_prefixes(
        self, segments: Segments, indices: Sequence[int], system_prompt: str | None = None
    ) -> list[SegmentPrefix]:
        """The prefixes of segments ``indices`` of one sample under ``system_prompt``."""
        ...

    def compress_with_prefixes(
        self, prefixes: Sequence[SegmentPrefix], queries: Sequence[str]
    ) -> PrefixCompression:
        """Memory and relevance of each prefix's segment for its query (one forward pass)."""
        ...


def stack_left_padded(
    prefixes: Sequence[SegmentPrefix], device: torch.device | str
) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """Per-layer ``(keys, values)`` of shape ``[B, kv_heads, P, head_dim]`` and the mask ``[B, P]``.

    Prefixes of different lengths (a short last window, longer time tags) are padded on the
    left, so every row's question starts at the same column; padded columns are masked out.
    """
    width = max(p.length for p in prefixes)
    first = prefixes[0].keys[0]
    heads, head_dim = first.shape[0], first.shape[2]
    mask = torch.zeros(len(prefixes), width, dtype=torch.long, device=device)
    layers = []
    for layer in range(len(prefixes[0].keys)):
        keys = torch.zeros(len(prefixes), heads, width, head_dim, dtype=first.dtype, device=device)
        values = torch.zeros_like(keys)
        for row, prefix in enumerate(prefixes):
            keys[row, :, width - prefix.length :] = prefix.keys[layer].to(device)
            values[row, :, width - prefix.length :] = prefix.values[layer].to(device)
        layers.append((keys, values))
    for row, prefix in enumerate(prefixes):
        mask[row, width - prefix.length :] = 1
    return layers, mask


def prefix_cache_bytes(text_config, prefix_length: int, dtype: torch.dtype = torch.bfloat16) -> int:
    """Bytes one segment's prefix takes for a Qwen3-style language model config (keys + values)."""
    heads = int(text_config.num_key_value_heads)
    head_dim = int(getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads)
    element = torch.empty(0, dtype=dtype).element_size()
    return 2 * int(text_config.num_hidden_layers) * heads * head_dim * int(prefix_length) * element
