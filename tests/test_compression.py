"""compress_samples: micro-batch limits, progress reporting and the one-memory-per-segment contract."""

import pytest
import torch

from tempo_kit.compressors import Compressor
from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.model.compression import compress_samples
from tempo_kit.types import CompressorOutput, Segments


def segments(n: int) -> Segments:
    frames = torch.zeros(n, 2, 32, 32, 3, dtype=torch.uint8)
    times = torch.arange(n, dtype=torch.float64)
    return Segments(frames, times[:, None].repeat(1, 2), times)


class CountingCompressor(Compressor):
    """Memory = the segment's time; relevance = 0.5; records the size of every call."""

    hidden_size, k_max = 3, 2

    def __init__(self, drop_one: bool = False, segment_batch_size: int = 100, takes_prompt: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.prompts: list[str | None] = []
        self.drop_one = drop_one
        self.segment_batch_size = segment_batch_size
        self.takes_system_prompt = takes_prompt

    def forward(self, samples, queries, system_prompt=None):
        counts = [len(s) for s in samples]
        self.calls.append(sum(counts))
        self.prompts.append(system_prompt)
        times = torch.cat([s.times for s in samples]).float()
        if self.drop_one:
            counts[0] -= 1
            times = times[1:]
        memory = times[:, None, None].expand(-1, self.k_max, self.hidden_size).clone()
        return CompressorOutput(memory, torch.full((len(times),), 0.5), counts)


def test_micro_batches_cut_calls_and_report_progress():
    compressor = CountingCompressor(segment_batch_size=3)
    reported: list[int] = []
    out = compress_samples(compressor, [segments(5), segments(2)], ["a", "b"], on_chunk=reported.append)
    assert compressor.calls == [3, 3, 1]  # full calls; the second holds the end of one sample and the next
    assert reported == compressor.calls
    assert out.num_segments == [5, 2]
    expected = torch.tensor([0, 1, 2, 3, 4, 0, 1], dtype=torch.float32)
    torch.testing.assert_close(out.memory[:, 0, 0], expected)


def test_one_call_when_everything_fits():
    compressor = CountingCompressor()
    reported: list[int] = []
    compress_samples(compressor, [segments(4)], ["q"], on_chunk=reported.append)
    assert compressor.calls == [4] and reported == [4]


def test_a_compressor_that_loses_a_segment_is_refused():
    with pytest.raises(TempoKitError, match="must keep one memory per input segment"):
        compress_samples(CountingCompressor(drop_one=True), [segments(3)], ["q"])


def test_the_system_prompt_reaches_a_compressor_that_takes_one():
    compressor = CountingCompressor(segment_batch_size=2, takes_prompt=True)
    compress_samples(compressor, [segments(3)], ["q"], "routing")
    assert compressor.prompts == ["routing", "routing"] and compressor.calls == [2, 1]
    compress_samples(compressor, [segments(1)], ["q"])
    assert compressor.prompts[-1] is None


def test_a_prompt_for_a_compressor_without_prompts_is_refused_before_any_call():
    compressor = CountingCompressor()
    with pytest.raises(ConfigError, match="takes none"):
        compress_samples(compressor, [segments(2)], ["q"], "routing")
    assert compressor.calls == []


@pytest.mark.parametrize("size", [0, -1, True, 2.5])
def test_a_bad_segment_batch_size_is_refused(size):
    with pytest.raises(ConfigError, match="segment_batch_size"):
        compress_samples(CountingCompressor(segment_batch_size=size), [segments(2)], ["q"])
