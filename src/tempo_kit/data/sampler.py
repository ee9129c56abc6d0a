"""The sampler of every Tempo data loader: seeded per epoch, sharded over ranks, resumable mid-epoch.

Resuming a run must continue with the batch after the last one trained, or the resumed run sees
the epoch's first batches twice and never sees its last ones. This sampler's order depends only
on ``(seed, epoch)``, and it can start an epoch at a sample position, which the data module
stores in every checkpoint (see :meth:`TempoDataModule.state_dict`). It also does the rank
sharding Lightning's distributed sampler would do (pad to a multiple of the world size, then
take every ``world_size``-th index), so one sampler serves single- and multi-process runs.
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
    ``shuffle``, else in order; the first ``start`` of this rank's indices are skipped in
    ``start_epoch`` (the part a checkpoint says was already trained on).

    Args:
        size: items in the dataset.
        seed: the run's seed.
        shuffle: a new order every epoch (training) or file order (validation, test).
        start_epoch: the epoch ``start`` applies to.
        start: this rank's indices to skip in ``start_epoch``.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, start_epoch: int = 0, start: int = 0):
        self.size = int(size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank, self.world_size = _rank_and_world()
        self.epoch = int(start_epoch)
        self.start = int(start)
        if self.start >= self.per_rank:  # the checkpoint ended that epoch: begin the next one
            self.epoch, self.start = self.epoch + 1, 0

    @property
    def per_rank(self) -> int:
        """Indices each rank gets per epoch (the dataset padded to a multiple of the world size)."""
        return -(-self.size // self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch; a new epoch starts at its beginning."""
        if epoch != self.epoch:
            self.epoch, self.start = int(epoch), 0

    def order(self, epoch: int) -> list[int]:
        """This rank's full index order for ``epoch``."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            indices = torch.randperm(self.size, generator=generator).tolist()
        else:
            indices = list(range(self.size))
        padded = self.per_rank * self.world_size
        while indices and len(indices) < padded:
            indices += indices[: padded - len(indices)]
        return indices[self.rank : padded : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.per_rank
