"""The released preprocessing (compatibility §1): FACTS' worked examples, the edges, and pixels
identical to an independent reference written here with PIL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tempo_kit.compressors.visual import patch_segments
from tempo_kit.data.synthetic import write_counter_video
from tempo_kit.errors import ConfigError, MediaError
from tempo_kit.video import load_video, make_segments
from tempo_kit.video.patchify import PatchConfig, patchify
from tempo_kit.video.preprocessing import (
    ReleasedGeometry,
    check_preprocessing,
    clip_size,
    first_resize_size,
    per_frame_size,
)

# --- sizes: FACTS §1 worked examples (W×H in → W×H the SVLM sees) ------------------------------


@pytest.mark.parametrize(
    ("source", "seen"),
    [
        ((640, 360), (512, 256)),
        ((854, 480), (512, 256)),
        ((512, 384), (512, 384)),
        ((1920, 1080), (512, 256)),
        ((200, 150), (448, 320)),
        ((320, 240), (416, 352)),
        ((128, 96), (384, 384)),
    ],
)
def test_facts_frame_sizes(source, seen):
    width, height = source
    final_h, final_w = ReleasedGeometry.of(height, width).final
    assert (final_w, final_h) == seen


def test_sixteen_by_nine_is_always_128_tokens_per_temporal_patch():
    for height in (360, 480, 720, 1080, 1440, 2160):
        h, w = ReleasedGeometry.of(height, height * 16 // 9).final
        assert (h // 16) * (w // 16) // 4 == 128


def test_first_resize_only_above_512():
    assert first_resize_size(150, 200) == (150, 200)  # long edge ≤ 512: kept as is (no rounding)
    assert first_resize_size(512, 300) == (512, 300)
    assert first_resize_size(360, 640) == (288, 512)  # 360·0.8 = 288
    assert first_resize_size(480, 854) == (288, 512)  # 480·512/854 = 287.8 → 18·16


def test_per_frame_factor_64_rounds_half_to_even():
    # 288 / 64 = 4.5 → 4 (half to even): 16:9 frames lose a row of patches here
    assert per_frame_size(288, 512) == (256, 512)
    # 352 / 64 = 5.5 → 6 (half to even rounds up from an odd quotient)
    assert per_frame_size(352, 512) == (384, 512)
    assert per_frame_size(96, 128) == (128, 128)  # 1.5 → 2


def test_upscaling_below_131072_pixels():
    # 192×128 after step 2 (24576 px) is below the clip floor: β = √(131072 / 24576) = 2.309
    # → ⌈128·β / 32⌉·32 = 320, ⌈192·β / 32⌉·32 = 448
    assert clip_size(128, 192, 8) == (320, 448)
    assert clip_size(256, 512, 8) == (256, 512)  # exactly 131072: kept


@given(h=st.integers(8, 2000), w=st.integers(8, 2000))
def test_final_size_properties(h, w):
    if max(h, w) / min(h, w) > 100:  # the first resize can push a very thin frame past ratio 200
        return
    fh, fw = ReleasedGeometry.of(h, w).final
    assert fh % 32 == 0 and fw % 32 == 0
    assert fh * fw >= 131072
    assert fh * fw <= 768 * 32 * 32


def test_extreme_aspect_ratio_is_a_clear_error():
    with pytest.raises(MediaError, match="aspect ratio over 200"):
        ReleasedGeometry.of(2, 500)  # long edge ≤ 512: no first resize, ratio 250


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="preprocessing='hf'.*released, qwen3_vl"):
        check_preprocessing("hf")


# --- time tags through the real path: video file → clip → segments → SVLM patches ---------------

VIDEO_CONFIG = PatchConfig()


def patch_tags(segments) -> list[list[str]]:
    patches = patch_segments([segments], [(0, j) for j in range(len(segments))], VIDEO_CONFIG, VIDEO_CONFIG)
    return [[f"{t:.1f}" for t in p.times] for p in patches]


@pytest.fixture(scope="module")
def clip_20_frames(tmp_path_factory):
    # 41 frames at 4 fps = 10.25 s → n = round(20.5) = 20 (half to even), real_fps = 20 / 10.25
    path = write_counter_video(tmp_path_factory.mktemp("v") / "a.mp4", 41, 4, (48, 64))
    return load_video(path)


def test_facts_patch_and_segment_tags(clip_20_frames):
    clip = clip_20_frames
    assert len(clip) == 20 and clip.real_fps == pytest.approx(20 / 10.25)
    segments = make_segments(clip, 8)
    tags = patch_tags(segments)
    assert tags[0] == ["0.3", "1.3", "2.3", "3.3"]  # FACTS §1's example
    assert [f"{t:.1f}" for t in segments.times.tolist()] == ["2.1", "6.2", "10.2"]
    # the last window holds 4 real frames (positions 16..19): (j + 0.5) / real_fps
    assert tags[2] == [f"{(j + 0.5) / clip.real_fps:.1f}" for j in (16, 18)]


def test_odd_last_window_and_lone_last_frame():
    real_fps = 2.0
    # 19 frames, window 8: the last window holds 16, 17, 18; the pad takes position 19
    seg = make_segments(torch.zeros(19, 64, 64, 3, dtype=torch.uint8), 8, real_fps=real_fps)
    assert patch_tags(seg)[2] == [f"{16.5 / 2:.1f}", f"{18.5 / 2:.1f}"]
    assert seg.times[-1].item() == pytest.approx((16 + 4) / 2)  # full window even when short
    # 17 frames: the lone last frame is doubled (positions 16, 17) → one temporal patch at 16.5
    seg = make_segments(torch.zeros(17, 64, 64, 3, dtype=torch.uint8), 8, real_fps=real_fps)
    assert seg.lengths.tolist() == [8, 8, 2]
    assert patch_tags(seg)[2] == [f"{16.5 / 2:.1f}"]


def test_max_frames_cap_slows_the_time_base(tmp_path):
    # 80 frames at 4 fps = 20 s asks 40 frames; max_frames 8 → real_fps 0.4, not 2
    path = write_counter_video(tmp_path / "long.mp4", 80, 4, (48, 64))
    clip = load_video(path, max_frames=8)
    assert len(clip) == 8 and clip.real_fps == pytest.approx(0.4)
    segments = make_segments(clip, 4)
    assert segments.times.tolist() == pytest.approx([5.0, 15.0])  # (0 + 2) / 0.4, (4 + 2) / 0.4
    assert patch_tags(segments)[1] == ["11.2", "16.2"]  # (4.5 / 0.4, 6.5 / 0.4) = 11.25, 16.25


def test_min_frames_is_a_named_setting(clip_20_frames, tmp_path):
    path = write_counter_video(tmp_path / "short.mp4", 6, 4, (48, 64))  # 1.5 s asks 3 frames
    assert len(load_video(path)) == 4  # the inference scripts' floor
    clip = load_video(path, min_frames=8)  # the evaluation scripts' floor
    assert len(clip) == 8 and clip.real_fps == pytest.approx(8 / 1.5)


def test_frames_need_no_further_resize_in_the_processor(clip_20_frames):
    """The released frames already have the SVLM's size: the processor step is the identity."""
    frames = clip_20_frames.frames[:8]
    patches = patchify(frames[None])
    h, w = frames.shape[1:3]
    assert patches.grid_thw.tolist() == [[4, h // 16, w // 16]]
    grid = patches.pixel_values.view(4, h // 32, w // 32, 2, 2, 3, 2, 16, 16)
    first = grid[0, 0, 0, 0, 0, :, 0] * 0.5 + 0.5  # undo mean = std = 0.5 on patch (0, 0) of frame 0
    expected = frames[0, :16, :16].permute(2, 0, 1).float() / 255
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-6)


# --- pixels: an independent reference of the released chain -----------------------------------


def reference_released_frames(path, fps=2.0, min_frames=4, max_frames=1024, n_clip=8) -> np.ndarray:
    """The released pipeline written out for this test: decord at native size, PIL per frame
    (first resize; qwen-vl-utils' per-frame factor-64 resize), then the factor-32 clip resize."""
    import decord

    reader = decord.VideoReader(str(path))
    total, avg_fps = len(reader), reader.get_avg_fps()
    n = 1 if total == 1 else min(max(round(total / avg_fps * fps), min_frames), max_frames)
    indices = np.round(np.linspace(0, total - 1, n)).astype(int).tolist()
    out = []
    for array in reader.get_batch(indices).asnumpy():
        image = Image.fromarray(array)
        w, h = image.size
        if max(w, h) > 512:
            r = 512 / max(w, h)
            image = image.resize((max(16, int(round(w * r / 16) * 16)), max(16, int(round(h * r / 16) * 16))),
                                 Image.BICUBIC)
        w, h = image.size
        hb, wb = max(64, round(h / 64) * 64), max(64, round(w / 64) * 64)
        if hb * wb < 4 * 64 * 64:
            beta = math.sqrt(4 * 64 * 64 / (h * w))
            hb, wb = math.ceil(h * beta / 64) * 64, math.ceil(w * beta / 64) * 64
        out.append(np.asarray(image.resize((wb, hb))))  # Image.resize's default filter: bicubic
    clip = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    h, w = clip.shape[-2:]
    floor = 128 * 32 * 32
    ceiling = max(min(768 * 32 * 32, 128000 * 32 * 32 * 0.9 / n_clip * 2), int(floor * 1.05))
    hb, wb = max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)
    if hb * wb > ceiling:
        beta = math.sqrt(h * w / ceiling)
        hb, wb = math.floor(h / beta / 32) * 32, math.floor(w / beta / 32) * 32
    elif hb * wb < floor:
        beta = math.sqrt(floor / (h * w))
        hb, wb = math.ceil(h * beta / 32) * 32, math.ceil(w * beta / 32) * 32
    if (hb, wb) != (h, w):
        resized = torch.nn.functional.interpolate(
            clip.float(), size=(hb, wb), mode="bicubic", align_corners=False, antialias=True
        )
        clip = resized.clamp(0, 255).round().to(torch.uint8)
    return clip.permute(0, 2, 3, 1).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("size", [(360, 640), (150, 200), (240, 320), (96, 128), (384, 512), (600, 800)])
def test_pixels_equal_the_independent_reference(tmp_path, size):
    path = write_counter_video(tmp_path / "v.mp4", 10, 4, size)  # 2.5 s → 5 frames
    ours = load_video(path, backend="decord").frames.numpy()
    assert np.array_equal(ours, reference_released_frames(path))


def test_fast_decoder_path_has_the_same_geometry(tmp_path):
    path = write_counter_video(tmp_path / "v.mp4", 8, 4, (150, 200))
    exact, fast = (load_video(path, resize=r) for r in ("pil", "decoder"))
    assert exact.frames.shape == fast.frames.shape == (4, 320, 448, 3)
    assert exact.real_fps == fast.real_fps
    # one swscale resize instead of three: close, not equal (measured in benchmarks/bench_decode.py)
    assert float((exact.frames.float() - fast.frames.float()).abs().mean()) < 4.0


def test_qwen3_vl_mode_keeps_hf_geometry(tmp_path):
    path = write_counter_video(tmp_path / "v.mp4", 8, 4, (360, 640))
    clip = load_video(path, preprocessing="qwen3_vl")
    assert clip.frames.shape[1:3] == (288, 512) and clip.preprocessing == "qwen3_vl"
    assert patchify(clip.frames[None, :2]).grid_thw.tolist() == [[1, 18, 32]]  # 512×288: 144 tokens


@pytest.mark.parametrize("preprocessing", ["released", "qwen3_vl"])
def test_a_video_too_thin_for_the_svlm_is_refused_before_decoding(tmp_path, preprocessing):
    path = write_counter_video(tmp_path / "thin.mp4", 4, 4, (2, 480))  # 480×2: aspect ratio 240
    with pytest.raises(MediaError, match="aspect ratio over 200"):
        load_video(path, preprocessing=preprocessing)


@given(st.integers(16, 1200), st.integers(16, 1200))
def test_processor_geometry_only_caps_the_long_edge_and_never_takes_the_released_chain(height, width):
    """``processor``: the decode-time step of ``qwen3_vl`` (long edge ≤ 512, sides ×16), no factor-64
    or factor-32 resize and no upscaling of small frames; the family's processor does the rest."""
    from tempo_kit.video.decode import FramePlan
    from tempo_kit.video.preprocessing import ReleasedGeometry

    if max(height, width) / min(height, width) > 200:
        return
    processor = FramePlan.for_mode("processor", 512, 16).final_size(height, width)
    assert processor == FramePlan.for_mode("qwen3_vl", 512, 16).final_size(height, width)
    assert max(processor) <= 512 + 8 and all(side % 16 == 0 for side in processor)
    if (height, width) == (64, 96):
        assert processor == (64, 96) != ReleasedGeometry.of(64, 96).final  # released upscales it


def test_processor_geometry_resizes_frames_to_its_size():
    from tempo_kit.video.decode import prepare_frames

    frames = torch.randint(0, 256, (2, 720, 1280, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert tuple(prepare_frames(frames, "processor").shape) == (2, 288, 512, 3)
    assert tuple(prepare_frames(frames[:, :64, :96], "processor").shape) == (2, 64, 96, 3)
