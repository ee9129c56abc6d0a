"""The pooling baseline: Qwen3-VL vision tower, merged tokens average-pooled to k_max."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tempo_kit.compressors.pooling import PoolingCompressor
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments
from tempo_kit.video.patchify import patchify


def video_segments(num=2, window=4, size=(64, 96), seed=0):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=generator)
    frame_times = torch.arange(num * window, dtype=torch.float64).view(num, window) / 2
    return Segments(frames=frames, frame_times=frame_times, times=frame_times.mean(1))


@pytest.fixture(scope="module")
def pooling(tiny_checkpoints):
    return COMPRESSORS.build(
        {"name": "pooling", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 4}
    ).eval()


def test_vision_tower_weights_equal_the_checkpoint(pooling, tiny_checkpoints):
    from transformers import Qwen3VLForConditionalGeneration

    full = Qwen3VLForConditionalGeneration.from_pretrained(str(tiny_checkpoints["svlm"]))
    reference = full.model.visual.state_dict()
    ours = pooling.visual.state_dict()
    assert ours.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(ours[key], value), key
    assert pooling.hidden_size == full.config.vision_config.out_hidden_size


def test_pools_merged_tokens_in_temporal_order(pooling):
    segments = video_segments(2)
    with torch.no_grad():
        out = pooling([segments], ["ignored"])
        patches = patchify(segments.frames[:1], segments.frame_times[:1])
        tokens = pooling.visual(patches.pixel_values, grid_thw=patches.grid_thw).pooler_output  # [2·6, d]
    assert out.relevance is None and out.num_segments == [2]
    assert out.memory.shape == (2, 4, pooling.hidden_size)
    # 12 merged tokens → 4 bins of 3 consecutive tokens each.
    torch.testing.assert_close(out.memory[0], tokens.view(4, 3, -1).mean(1), atol=1e-5, rtol=1e-5)
    expected = F.adaptive_avg_pool1d(tokens.T[None], 4)[0].T
    torch.testing.assert_close(out.memory[0], expected, atol=1e-6, rtol=1e-6)


def test_query_agnostic_and_batch_independent(pooling):
    samples = [video_segments(3, seed=1), video_segments(1, size=(96, 64), seed=2)]
    with torch.no_grad():
        a = pooling(samples, ["first question", "x"])
        b = pooling(samples, ["something else entirely", ""])
        pooling.segment_batch_size = 1
        try:
            c = pooling(samples, ["first question", "x"])
        finally:
            pooling.segment_batch_size = 8
    assert torch.equal(a.memory, b.memory)
    torch.testing.assert_close(a.memory, c.memory, atol=1e-5, rtol=1e-5)


def test_upsamples_when_fewer_tokens_than_k_max(tiny_checkpoints):
    pooling = PoolingCompressor(str(tiny_checkpoints["svlm"]), k_max=64)
    with torch.no_grad():
        out = pooling([video_segments(1, window=2)], ["q"])  # 6 merged tokens → 64 by repetition
    assert out.memory.shape == (1, 64, pooling.hidden_size)


def test_bad_inputs(tmp_path, pooling):
    with pytest.raises(CheckpointError, match="hf download"):
        PoolingCompressor("Qwen/Qwen3-VL-2B-Instruct")
    with pytest.raises(ConfigError, match="k_max"):
        PoolingCompressor(str(tmp_path), k_max=-1)
    with pytest.raises(ConfigError, match="queries"):
        pooling([video_segments(1)], ["a", "b"])
