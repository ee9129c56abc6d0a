"""compress_samples: micro-batch limits, progress reporting and the one-memory-per-segment contract."""

import pytest
import torch

from tempo_kit.compressors import Compressor
from tempo_kit.errors import TempoKitError
from tempo_kit.model.compression import compress_samples
from tempo_kit.types import CompressorOutput, Segments


def segments(n: int) -> Segments:
    frames = torch.zeros(n, 2, 32, 32, 3, dtype=torch.uint8)
    times = torch.arange(n, dtype=torch.float64)
    return Segments(frames, times[:, None].repeat(1, 2), times)


class CountingCompressor(Compressor):
    """Memory = the segment's time; relevance = 0.5; records the size of every call."""

    hidden_size, k_max = 3, 2

    def __init__(self, drop_one: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.drop_one = drop_one

    def forward(self, samples, queries):
        counts = [len(s) for s in samples]
        self.calls.append(sum(counts))
        times = torch.cat([s.times for s in samples]).float()
        if self.drop_one:
            counts[0] -= 1
            times = times[1:]
        memory = times[:, None, None].expand(-1, self.k_max, self.hidden_size).clone()
        return CompressorOutput(memory, torch.full((len(times),), 0.5), counts)


def test_micro_batches_cut_calls_and_report_progress():
    compressor = CountingCompressor()
    reported: list[int] = []
    out = compress_samples(compressor, [segments(5), segments(2)], ["a", "b"], 3, on_chunk=reported.append)
    assert max(compressor.calls) <= 3 and sum(compressor.calls) == 7
    assert reported == compressor.calls
    assert out.num_segments == [5, 2]
    expected = torch.tensor([0, 1, 2, 3, 4, 0, 1], dtype=torch.float32)
    torch.testing.assert_close(out.memory[:, 0, 0], expected)


def test_one_call_when_everything_fits():
    compressor = CountingCompressor()
    reported: list[int] = []
    compress_samples(compressor, [segments(4)], ["q"], None, on_chunk=reported.append)
    assert compressor.calls == [4] and reported == [4]


def test_a_compressor_that_loses_a_segment_is_refused():
    with pytest.raises(TempoKitError, match="must keep one memory per input segment"):
        compress_samples(CountingCompressor(drop_one=True), [segments(3)], ["q"], None)
