"""The resumable sampler: a resume on the same world size continues each rank's exact order; on
another world size every sample not yet trained in the epoch is trained once, none twice."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.data.sampler import ResumableSampler


def ranks(size, world, start=0, seed=5, epoch=1):
    samplers = [ResumableSampler(size, seed, True, start_epoch=epoch, start=start) for _ in range(world)]
    for rank, sampler in enumerate(samplers):  # the ranks a process group of this size would have
        sampler.rank, sampler.world_size = rank, world
    return [list(sampler) for sampler in samplers]


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 40), world=st.integers(1, 4), batch=st.integers(1, 3), data=st.data())
def test_same_world_size_continues_exactly_and_another_trains_each_rest_once(size, world, batch, data):
    per_rank = -(-size // world)
    trained_batches = data.draw(st.integers(0, max(0, per_rank // batch - 1)))
    start = trained_batches * batch * world  # what the data module stores: samples of all ranks
    full = ranks(size, world)
    assert ranks(size, world, start) == [order[trained_batches * batch :] for order in full]
    trained = [i for order in full for i in order[: trained_batches * batch]]
    new_world = data.draw(st.integers(1, 4))
    rest = [i for order in ranks(size, new_world, start) for i in order]
    assert len({len(order) for order in ranks(size, new_world, start)}) == 1  # ranks even: no rank waits
    extra = Counter(rest)
    extra.subtract(set(range(size)) - set(trained))
    assert min(extra.values()) >= 0  # every sample not yet trained comes
    assert sum(extra.values()) < new_world  # once: beyond it, only the padding that evens the ranks


def test_a_finished_epoch_resumes_at_the_next_one():
    sampler = ResumableSampler(6, 0, True, start_epoch=2, start=6)
    assert sampler.epoch == 3 and len(list(sampler)) == 6
