"""The sampler of every Tempo data loader: seeded per epoch, sharded over ranks, resumable mid-epoch.

Resuming a run must continue with the batch after the last one trained, or the resumed run sees
the epoch's first batches twice and never sees its last ones. This sampler's order depends only
on ``(seed, epoch)``, and it can start an epoch at a sample position, which the data module
stores in every checkpoint (see :meth:`TempoDataModule.state_dict`). It also does the rank
sharding Lightning's distributed sampler would do (pad to a multiple of the world size, then
take every ``world_size``-th index), so one sampler serves single- and multi-process runs.

The resume position is global: the first ``start`` positions of the epoch's order (over all ranks)
were trained. On the same world size the ranks continue exactly where they stopped (the same
batches as a run that never stopped). On another world size the rest of the epoch's order is
dealt to the new ranks: every sample not yet trained in that epoch is trained once in it, none
twice (beyond the padding that evens the ranks out); the batches are then not those of an
uninterrupted run, because batches are cut per rank.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableSampler(Sampler[int]):
    """Indices of ``size`` items for this rank: a permutation seeded by ``seed + epoch`` when
    ``shuffle``, else in order; the first ``start`` positions of that order (all ranks together)
    are skipped in ``start_epoch`` (the part a checkpoint says was already trained on).

    Args:
        size: items in the dataset.
        seed: the run's seed.
        shuffle: a new order every epoch (training) or file order (validation, test).
        start_epoch: the epoch ``start`` applies to.
        start: positions of the epoch's global order to skip in ``start_epoch``.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, start_epoch: int = 0, start: int = 0):
        self.size = int(size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank, self.world_size = _rank_and_world()
        self.epoch = int(start_epoch)
        self.start = int(start)
        if self.start >= self.size:  # the checkpoint ended that epoch: begin the next one
            self.epoch, self.start = self.epoch + 1, 0

    @property
    def per_rank(self) -> int:
        """Indices each rank gets per epoch (the dataset padded to a multiple of the world size)."""
        return -(-self.size // self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch; a new epoch starts at its beginning."""
        if epoch != self.epoch:
            self.epoch, self.start = int(epoch), 0

    def order(self, epoch: int, start: int = 0) -> list[int]:
        """This rank's index order for ``epoch`` after the first ``start`` global positions: the
        rest, padded with the order's first indices to a multiple of the world size, dealt out."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            everything = torch.randperm(self.size, generator=generator).tolist()
        else:
            everything = list(range(self.size))
        indices = everything[start:]
        padded = -(-len(indices) // self.world_size) * self.world_size
        while everything and len(indices) < padded:
            indices += everything[: padded - len(indices)]
        return indices[self.rank : padded : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch, self.start))

    def __len__(self) -> int:
        return self.per_rank
