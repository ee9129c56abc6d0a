"""Allocators (how many tokens each segment keeps) and intra-segment reductions (which ones).

Importing this package registers ``ata``, ``uniform``, ``subsample``, ``topk``, ``adversarial``,
``random`` and ``prune`` in ``ALLOCATORS`` and ``head``, ``tail``, ``merge``, ``random`` in ``REDUCTIONS``.
"""

from tempo_kit.allocators.ata import ATA_MODES, ATAAllocator, ata_exact, ata_released
from tempo_kit.allocators.base import AllocationRequest, Allocator, check_request
from tempo_kit.allocators.baselines import (
    AdversarialAllocator,
    PruneAllocator,
    RandomDropAllocator,
    SubsampleAllocator,
    TopKAllocator,
    UniformAllocator,
)
from tempo_kit.allocators.reductions import head, merge, reduce_tokens, tail

__all__ = [
    "ATA_MODES",
    "ATAAllocator",
    "AdversarialAllocator",
    "AllocationRequest",
    "Allocator",
    "PruneAllocator",
    "RandomDropAllocator",
    "SubsampleAllocator",
    "TopKAllocator",
    "UniformAllocator",
    "ata_exact",
    "ata_released",
    "check_request",
    "head",
    "merge",
    "reduce_tokens",
    "tail",
]
