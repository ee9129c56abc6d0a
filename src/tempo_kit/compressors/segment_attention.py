"""``attn_implementation="sdpa_segments"``: SDPA run per packed sequence, for CPUs (and any device
without flash-attention).

Why the kit has its own: transformers attends within packed sequences under SDPA by building a
block-diagonal mask over the whole row, so attention still costs ``(Σ n)²`` — on a CPU, where
attention dominates small models, a packed call with that mask is slower than the padded one it
replaces. flash-attention 2's varlen kernels cost ``Σ n²`` but need a CUDA GPU and the
``flash_attn`` package. This implementation does what they do with PyTorch's SDPA: it finds the
sequences of a packed row where its text position ids restart (as transformers'
``find_packed_sequence_indices`` does) and runs causal SDPA on each, so attention costs ``Σ n²``
and every other layer runs on the real tokens only. Exact: each sequence is computed as it would be
alone (up to float rounding of a different kernel width).

Everything that is not a packed row (a padding mask, a cache, the vision tower's chunks) goes to
transformers' own SDPA unchanged. Registered with transformers' ``AttentionInterface`` and
``AttentionMaskInterface`` when this module is imported (the memory-token core imports it).
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

#: the name to pass as ``attn_implementation``
SEGMENT_ATTENTION = "sdpa_segments"


def sequence_bounds(positions: Tensor) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of ``positions`` (one row) that counts up by one from a restart."""
    starts = (positions.diff() != 1).nonzero().flatten().add(1).tolist()
    edges = [0, *starts, int(positions.shape[0])]
    return list(zip(edges, edges[1:]))


def segment_attention_forward(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    **kwargs,
) -> tuple[Tensor, None]:
    """SDPA per packed sequence of each row (``query`` ``[B, H, L, D]`` → ``[B, L, H, D]``)."""
    positions = kwargs.get("position_ids")
    packed = attention_mask is None and positions is not None and query.shape[2] == key.shape[2] > 1
    if not packed or positions.shape[-1] != query.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    rows = []
    for row, row_positions in enumerate(positions.expand(query.shape[0], -1)):
        pieces = [
            sdpa_attention_forward(
                module, query[row : row + 1, :, a:b], key[row : row + 1, :, a:b], value[row : row + 1, :, a:b],
                None, **kwargs,
            )[0]
            for a, b in sequence_bounds(row_positions)
        ]  # fmt: skip
        rows.append(torch.cat(pieces, dim=1))
    return torch.cat(rows), None


def segment_attention_mask(*args, attention_mask: Tensor | None = None, **kwargs) -> Tensor | None:
    """No mask for rows without padding or cache (their sequences are found from the positions);
    SDPA's own mask otherwise."""
    if attention_mask is None and kwargs.get("q_length") == kwargs.get("kv_length"):
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


AttentionInterface.register(SEGMENT_ATTENTION, segment_attention_forward)
AttentionMaskInterface.register(SEGMENT_ATTENTION, segment_attention_mask)
