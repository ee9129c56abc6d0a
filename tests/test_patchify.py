"""Frames → patches against Hugging Face's own Qwen3-VL / Qwen2-VL processing code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.video.patchify import PatchConfig, patchify, smart_resize, temporal_patch_times

IMAGE_CONFIG = PatchConfig(min_pixels=256 * 256, max_pixels=16777216)


def _frames(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


def _hf_image_processor(config: PatchConfig):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        patch_size=config.patch_size,
        temporal_patch_size=config.temporal_patch_size,
        merge_size=config.merge_size,
        image_mean=list(config.image_mean),
        image_std=list(config.image_std),
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
    )


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 3000),
    width=st.integers(1, 3000),
    min_pixels=st.sampled_from([4096, 65536, 256 * 256 * 4]),
    max_pixels=st.sampled_from([128 * 128, 512 * 512, 16777216]),
)
def test_smart_resize_matches_hf_image_rule(height, width, min_pixels, max_pixels):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_resize

    if max(height, width) / min(height, width) > 200:
        with pytest.raises(ValueError, match="aspect ratio"):
            smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
        return
    expected = hf_resize(height, width, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
    assert smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels) == expected


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(8, 2000),
    width=st.integers(8, 2000),
    num_frames=st.integers(2, 64),
    max_pixels=st.sampled_from([64 * 64 * 8, 512 * 512 * 4, 25165824]),
)
def test_smart_resize_matches_hf_video_rule(height, width, num_frames, max_pixels):
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as hf_resize

    if max(height, width) / min(height, width) > 100:
        return
    expected = hf_resize(
        num_frames, height, width, temporal_factor=2, factor=32, min_pixels=4096, max_pixels=max_pixels
    )
    ours = smart_resize(height, width, num_frames=num_frames, min_pixels=4096, max_pixels=max_pixels)
    assert ours == expected


def test_video_layout_matches_hf_video_processor_patchify():
    """Sizes already on the grid: no resize, so the flattened layout must match HF exactly."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    frames = _frames((3, 5, 64, 96, 3))  # 3 segments, 5 frames → padded to 6
    ours = patchify(frames)
    video = frames.permute(0, 1, 4, 2, 3).float() / 255
    video = (video - 0.5) / 0.5
    for s in range(3):
        hf_patches, t, h, w = Qwen3VLVideoProcessor.patchify(None, video[s : s + 1], 16, 2, 2)
        rows = t * h * w
        torch.testing.assert_close(ours.pixel_values[s * rows : (s + 1) * rows], hf_patches[0])
        assert ours.grid_thw[s].tolist() == [t, h, w] == [3, 4, 6]
    assert ours.pixel_values.shape == (3 * 3 * 4 * 6, 3 * 2 * 16 * 16)


@pytest.mark.parametrize("size", [(64, 96), (100, 150), (300, 200), (37, 512)])
def test_image_matches_hf_image_processor(size):
    from PIL import Image

    frame = _frames((*size, 3), seed=sum(size))
    hf = _hf_image_processor(IMAGE_CONFIG)(Image.fromarray(frame.numpy()), return_tensors="pt")
    ours = patchify(frame[None, None], config=IMAGE_CONFIG, rule="image")
    assert ours.grid_thw.tolist() == hf["image_grid_thw"].tolist()
    assert ours.pixel_values.shape == hf["pixel_values"].shape
    # PIL's fixed-point and torch's float bicubic round a few pixels one or two uint8 levels apart.
    levels = (ours.pixel_values - hf["pixel_values"]).abs() * 255 / 2
    assert levels.max() <= 2 + 1e-3
    assert (levels > 0.01).float().mean() <= 0.01


def test_image_without_resize_is_exact():
    from PIL import Image

    frame = _frames((256, 288, 3), seed=7)
    hf = _hf_image_processor(IMAGE_CONFIG)(Image.fromarray(frame.numpy()), return_tensors="pt")
    ours = patchify(frame[None, None], config=IMAGE_CONFIG, rule="image")
    torch.testing.assert_close(ours.pixel_values, hf["pixel_values"].float(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_frames", [4, 5])  # 5: the odd frame is padded by repetition, as HF does
def test_video_patches_match_hf_video_processor(num_frames):
    """Frames already at the processor's size, as the released chain calls it (``do_resize=False``):
    HF's own ``Qwen3VLVideoProcessor.patchify`` lays the patches out (it needs no torchvision)."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    frames = _frames((1, num_frames, 96, 128, 3), seed=3)
    config = PatchConfig(min_pixels=96 * 128)
    processor = Qwen3VLVideoProcessor(image_mean=list(config.image_mean), image_std=list(config.image_std))
    scaled = frames.permute(0, 1, 4, 2, 3).float() * config.rescale_factor
    normalised = (scaled - torch.tensor(config.image_mean)[:, None, None]) / torch.tensor(config.image_std)[:, None, None]
    flat, grid_t, grid_h, grid_w = processor.patchify(
        normalised, patch_size=config.patch_size, merge_size=config.merge_size,
        temporal_patch_size=config.temporal_patch_size,
    )  # fmt: skip
    ours = patchify(frames, config=config)
    assert ours.grid_thw.tolist() == [[grid_t, grid_h, grid_w]] == [[(num_frames + 1) // 2, 6, 8]]
    torch.testing.assert_close(ours.pixel_values, flat[0], atol=1e-6, rtol=0)


def test_segments_are_batched_independently():
    frames = _frames((2, 3, 4, 70, 90, 3), seed=1)  # leading dims flatten to 6 segments
    times = torch.arange(2 * 3 * 4, dtype=torch.float64).view(2, 3, 4) / 2
    whole = patchify(frames, times)
    parts = [patchify(frames[i, j][None], times[i, j][None]) for i in range(2) for j in range(3)]
    torch.testing.assert_close(whole.pixel_values, torch.cat([p.pixel_values for p in parts]))
    assert whole.grid_thw.shape == (6, 3)
    torch.testing.assert_close(whole.timestamps, torch.cat([p.timestamps for p in parts]))


def test_single_frame_is_padded_by_repetition():
    frame = _frames((1, 1, 64, 64, 3), seed=2)
    single = patchify(frame)
    doubled = patchify(frame.expand(1, 2, 64, 64, 3).contiguous())
    assert single.grid_thw.tolist() == [[1, 4, 4]]
    torch.testing.assert_close(single.pixel_values, doubled.pixel_values)


def test_timestamps_match_hf_processor():
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    indices = [0, 15, 30, 45, 60, 75, 90, 105]
    fps = 29.97
    expected = Qwen3VLProcessor._calculate_timestamps(None, list(indices), fps, 2)
    ours = temporal_patch_times(torch.tensor([indices], dtype=torch.float64) / fps)
    np.testing.assert_allclose(ours[0].numpy(), expected, rtol=0, atol=1e-12)
    assert [f"{t:.1f}" for t in ours[0].tolist()] == [f"{t:.1f}" for t in expected]


def test_odd_count_pads_with_the_next_position():
    # compatibility §1: the released frame list is padded before the processor numbers it, so the
    # padding frame takes position j + 1, not a repeat of j (HF's own rule for an odd index list)
    times = torch.tensor([[8.0, 9.0, 10.0]]) / 2.0  # sampled positions 8, 9, 10 at real_fps 2
    assert temporal_patch_times(times)[0].tolist() == [(8 + 9) / 2 / 2.0, (10 + 11) / 2 / 2.0]
    assert temporal_patch_times(torch.tensor([[3.0]]))[0].tolist() == [3.0]  # a lone frame: no step


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[\.\.\., F, H, W, 3\]"):
        patchify(torch.zeros(2, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="frame_times"):
        patchify(_frames((1, 2, 64, 64, 3)), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="resize rule"):
        patchify(_frames((1, 2, 64, 64, 3)), rule="square")


def test_output_dtype_and_device_follow_input():
    frames = _frames((1, 2, 64, 64, 3))
    out = patchify(frames.to("cpu"))
    assert out.pixel_values.dtype == torch.float32 and out.pixel_values.device == frames.device
