"""Packed decoder rows for training: several samples share a row, each attending only to itself.

Padding every row of a batch to its longest sample spends the decoder's compute on padding when
lengths vary (long and short videos, images and text in one mixture). Packing places samples
one after another in rows of at most ``pack_tokens`` tokens, with position ids that restart at 0 at
each sample. transformers reads that layout itself when no attention mask is given
(``masking_utils.find_packed_sequence_indices``): a block-diagonal causal mask under SDPA or eager
attention, per-sample sequence lengths under flash-attention 2. So no kit-side attention code.

The loss is the unpacked loss: the first label of each sample is ignored (unpacked, the shifted
cross-entropy never predicts it either; packed, it would be predicted from the previous sample's
last token), so the supervised tokens — and the mean over them — are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tempo_kit.errors import ConfigError
from tempo_kit.types import IGNORE_INDEX


@dataclass(frozen=True)
class PackedRows:
    """A batch's samples packed into rows.

    Attributes:
        inputs_embeds: ``[R, L, d]``; positions after a row's last sample are zeros.
        position_ids: ``[R, L]``, restarting at 0 at each sample (and at the row's padding tail).
        labels: ``[R, L]`` or ``None``; ``IGNORE_INDEX`` at each sample's first token and the tail.
        token_mask: ``[R, L]``, 1 on the samples' tokens, 0 on the tail.
        rows: the sample indices in each row, in order.
    """

    inputs_embeds: Tensor
    position_ids: Tensor
    labels: Tensor | None
    token_mask: Tensor
    rows: list[list[int]]


def check_pack_tokens(value: object, key: str) -> None:
    """``None`` (no packing) or a positive whole number of tokens per row."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{key} must be a positive number of tokens per packed row, or null; got {value!r}")


def plan_rows(lengths: Sequence[int], pack_tokens: int) -> list[list[int]]:
    """First fit in batch order: each sample goes to the first row it fits in (≤ ``pack_tokens``).

    A sample longer than ``pack_tokens`` gets a row of its own (a sample is never split), so the
    batch order within each row is kept and the plan is deterministic.
    """
    rows: list[list[int]] = []
    used: list[int] = []
    for index, length in enumerate(lengths):
        for r, total in enumerate(used):
            if total + length <= pack_tokens:
                rows[r].append(index)
                used[r] += length
                break
        else:
            rows.append([index])
            used.append(length)
    return rows


def pack_rows(
    inputs_embeds: Tensor, attention_mask: Tensor, labels: Tensor | None, pack_tokens: int
) -> PackedRows:
    """Pack a right-padded batch (``attention_mask`` 1 on each row's leading real tokens)."""
    lengths = [int(n) for n in attention_mask.sum(dim=1).tolist()]
    rows = plan_rows(lengths, pack_tokens)
    width = max(sum(lengths[i] for i in row) for row in rows)
    device = inputs_embeds.device
    embeds = inputs_embeds.new_zeros(len(rows), width, inputs_embeds.shape[-1])
    positions = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    token_mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    packed_labels = None
    if labels is not None:
        packed_labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long, device=device)
    for r, row in enumerate(rows):
        offset = 0
        for i in row:
            n = lengths[i]
            span = slice(offset, offset + n)
            embeds[r, span] = inputs_embeds[i, :n]
            positions[r, span] = torch.arange(n, device=device)
            token_mask[r, span] = 1
            if packed_labels is not None:
                packed_labels[r, span] = labels[i, :n]
                packed_labels[r, offset] = IGNORE_INDEX
            offset += n
        positions[r, offset:] = torch.arange(width - offset, device=device)  # the tail: a sequence of its own
    return PackedRows(embeds, positions, packed_labels, token_mask, rows)
