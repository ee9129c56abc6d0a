"""Packed compressor calls: a micro-batch's segments one after another in one row, no padding.

A padded call runs every segment as long as the longest (``segments × longest`` tokens); on mixed
video (16:9 and 4:3 windows, a short last window, images, questions of different lengths) that is
mostly padding. Packed, the call runs ``sum(tokens)``: the sequences are concatenated into one row
and each attends only to itself.

No attention code of the kit's own: the row is laid out the way transformers reads packed
sequences — no attention mask, and text position ids that restart at 0 at each segment
(``masking_utils.find_packed_sequence_indices``). From that it builds a block-diagonal causal
mask under SDPA or eager attention, and per-segment sequence lengths under flash-attention 2.
M-RoPE families take transformers' four-row position form ``[text; temporal; height; width]``:
the text row marks the segments, the other three are each segment's M-RoPE positions exactly as
the padded call computes them (they are gathered from it), so no position changes.

The packed layout is derived from the padded one (same ids, same memory slots), so the two paths
cannot disagree about what a segment's sequence is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.hf import PACKING_ATTENTION

if TYPE_CHECKING:
    from tempo_kit.compressors.family import FamilyAdapter



@dataclass(frozen=True)
class PackedCall:
    """One micro-batch as a single packed row.

    Attributes:
        input_ids: ``[1, N]``, ``N`` the real tokens of every segment (memory slots included).
        memory_mask: ``[1, N]``, True at the memory slots (``k_max`` after each sequence).
        last_real: ``[B]``, index in the row of each segment's last real token.
        lengths: ``[B]``, tokens of each segment in the row.
    """

    input_ids: Tensor
    memory_mask: Tensor
    last_real: Tensor
    lengths: Tensor


def pack_call(input_ids: Tensor, attention_mask: Tensor, memory_mask: Tensor, last_real: Tensor) -> PackedCall:
    """The packed row of a padded micro-batch ``[B, L]`` (either padding side): its real tokens in
    row-major order, so segment ``b`` occupies ``[offset_b, offset_b + length_b)``."""
    keep = attention_mask.bool()
    lengths = keep.sum(1)
    offsets = lengths.cumsum(0) - lengths
    first_real = keep.long().argmax(1)  # left padding: the row's real tokens start later
    return PackedCall(
        input_ids=input_ids[keep][None],
        memory_mask=memory_mask[keep][None],
        last_real=offsets + (last_real - first_real),
        lengths=lengths,
    )


def restarting_positions(lengths: Tensor) -> Tensor:
    """``[N]``: ``0 … n-1`` for each of ``lengths`` in turn (the text row of a packed call)."""
    total = int(lengths.sum())
    starts = (lengths.cumsum(0) - lengths).repeat_interleave(lengths)
    return torch.arange(total, device=lengths.device) - starts


def pack_position_ids(position_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Position ids of the packed row from a padded call's ``[B, L]`` (1-D) or ``[3, B, L]`` (M-RoPE).

    1-D positions must already count each segment from 0 (checked: otherwise transformers would
    join segments whose positions happen to continue). M-RoPE ones get the restarting text row
    in front, the four-row form Qwen-VL language models split into mask positions and RoPE ones.
    """
    keep = attention_mask.bool()
    lengths = keep.sum(1)
    text = restarting_positions(lengths)
    if position_ids.ndim == 2:
        packed = position_ids[keep]
        if not torch.equal(packed, text):
            raise TempoKitError(
                "the family's 1-D position ids do not restart at 0 for each segment, so its segments "
                "cannot be packed (set model.compressor.pack_segments: false)"
            )
        return packed[None]
    if position_ids.ndim != 3 or position_ids.shape[0] != 3:
        raise TempoKitError(
            f"cannot pack position ids of shape {tuple(position_ids.shape)} (expected [B, L] or [3, B, L]); "
            "set model.compressor.pack_segments: false"
        )
    rope = position_ids[:, keep][:, None]  # [3, 1, N]
    return torch.cat([text.view(1, 1, -1).to(rope), rope])


def check_packing(family: type[FamilyAdapter], pack_segments: bool, attn_implementation: str | None) -> None:
    """Refuse ``pack_segments`` where a packed call would not keep segments apart (one line)."""
    if not pack_segments:
        return
    if not family.packs_segments:
        raise ConfigError(
            f"compressor {family.name!r} cannot pack segments (its adapter does not declare packs_segments); "
            "set model.compressor.pack_segments: false"
        )
    if attn_implementation is not None and attn_implementation not in PACKING_ATTENTION:
        raise ConfigError(
            f"compressor attn_implementation {attn_implementation!r} cannot attend within packed segments; "
            f"use one of {', '.join(sorted(PACKING_ATTENTION))} or set model.compressor.pack_segments: false"
        )
