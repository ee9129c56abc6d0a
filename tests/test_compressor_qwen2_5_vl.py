"""The qwen2_5_vl compressor builds Qwen2.5-VL's own input: ids, pixels and M-RoPE positions as
Hugging Face's processor and model compute them for the same frames and text."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tempo_kit.compressors.prompts import QUERY_PREFIX, ROUTING_PROMPT
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

QUERY = "Which colour is the circle?"


def video(frames=4, size=(56, 84), fps=2.0, seed=0):
    """One segment at a size that needs no resize (sides multiples of 28), so pixels compare exactly."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (1, frames, *size, 3), dtype=torch.uint8, generator=g)
    times = torch.arange(frames, dtype=torch.float64).view(1, frames) / fps
    return Segments(frames=pixels, frame_times=times, times=times.mean(1), kind="video")


@pytest.fixture(scope="module")
def compressor(tiny_svlm):
    return COMPRESSORS.build({"name": "qwen2_5_vl", "pretrained": str(tiny_svlm("qwen2_5_vl")), "k_max": 4}).eval()


def processor_ids(tokenizer, slot: str, grid_thw: torch.Tensor) -> list[int]:
    """Chat template, then the slot expanded by ``Qwen2_5_VLProcessor``'s own replacement code."""
    from transformers import Qwen2_5_VLProcessor

    messages = [
        {"role": "system", "content": ROUTING_PROMPT},
        {"role": "user", "content": [{"type": slot}, {"type": "text", "text": QUERY_PREFIX + QUERY}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    merge = SimpleNamespace(merge_size=2)
    holder = SimpleNamespace(video_processor=merge, image_processor=merge, video_token="<|video_pad|>",
                             image_token="<|image_pad|>")  # fmt: skip
    if slot == "video":
        expanded = Qwen2_5_VLProcessor.replace_video_token(holder, {"video_grid_thw": grid_thw[None]}, 0)
    else:
        expanded = Qwen2_5_VLProcessor.replace_image_token(holder, {"image_grid_thw": grid_thw[None]}, 0)
    placeholder = "<|video_pad|>" if slot == "video" else "<|image_pad|>"
    return tokenizer(text.replace(placeholder, expanded, 1), add_special_tokens=False)["input_ids"]


def test_video_ids_pixels_and_time_match_hugging_face(compressor):
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    segment = video()
    visual = compressor.adapter.encode_visual([segment], [(0, 0)], "cpu")[0]
    ours = compressor.adapter.prefix_ids(visual, ROUTING_PROMPT) + compressor.adapter.suffix_ids(QUERY)
    assert ours == processor_ids(compressor.tokenizer, "video", visual.grid_thw)
    assert visual.grid_thw.tolist() == [2, 4, 6]
    # pixels: rescale, CLIP mean/std, HF's own patch layout (its patchify needs no torchvision)
    config = json.loads((compressor.adapter.path / "preprocessor_config.json").read_text())
    mean, std = torch.tensor(config["image_mean"])[:, None, None], torch.tensor(config["image_std"])[:, None, None]
    normalised = (segment.frames.permute(0, 1, 4, 2, 3).float() / 255 - mean) / std
    flat, *_ = Qwen3VLVideoProcessor.patchify(None, normalised, patch_size=14, merge_size=2, temporal_patch_size=2)
    torch.testing.assert_close(visual.pixel_values, flat[0], atol=1e-6, rtol=0)
    # the processor's second_per_grid_ts is temporal_patch_size / fps
    assert compressor.adapter.visual_inputs([visual], "cpu")["second_per_grid_ts"].tolist() == [2 / 2.0]


def test_image_ids_and_pixels_match_hugging_face(compressor):
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    segment = video(frames=1, size=(56, 56))
    image = Segments(segment.frames, torch.zeros(1, 1), torch.zeros(1), kind="image")
    visual = compressor.adapter.encode_visual([image], [(0, 0)], "cpu")[0]
    ours = compressor.adapter.prefix_ids(visual, ROUTING_PROMPT) + compressor.adapter.suffix_ids(QUERY)
    assert ours == processor_ids(compressor.tokenizer, "image", visual.grid_thw)
    config = json.loads((compressor.adapter.path / "preprocessor_config.json").read_text())
    keys = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std", "min_pixels", "max_pixels")
    hf = Qwen2VLImageProcessorPil(**{k: config[k] for k in keys})(Image.fromarray(image.frames[0, 0].numpy()), return_tensors="pt")
    assert visual.grid_thw.tolist() == hf["image_grid_thw"][0].tolist()
    torch.testing.assert_close(visual.pixel_values, hf["pixel_values"].float(), atol=1e-6, rtol=0)


def test_time_moves_the_temporal_positions_not_the_text(compressor):
    """Absolute time: at 1 fps a temporal patch spans 2 s, so the temporal axis steps twice as far
    (tokens_per_second × seconds) while the ids stay the same."""
    ids, steps = [], []
    for fps in (2.0, 1.0):
        visual = compressor.adapter.encode_visual([video(fps=fps)], [(0, 0)], "cpu")[0]
        sequence = compressor.adapter.prefix_ids(visual, "sys")
        input_ids = torch.tensor([sequence])
        inputs = compressor.adapter.visual_inputs([visual], "cpu")
        positions = compressor.adapter.positions(compressor.svlm, input_ids, torch.ones_like(input_ids), inputs)
        temporal = positions[0, 0][input_ids[0] == compressor.adapter.sequences.video_token_id]
        ids.append(sequence)
        steps.append(int(temporal.max() - temporal.min()))
    tokens_per_second = compressor.svlm.config.vision_config.tokens_per_second
    assert ids[0] == ids[1] and steps == [tokens_per_second * 1, tokens_per_second * 2]


def test_a_per_patch_time_tag_is_refused_at_build(tiny_svlm):
    from tempo_kit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'qwen2_5_vl' tells time by 'positions', not per-patch time tags"):
        COMPRESSORS.build({"name": "qwen2_5_vl", "pretrained": str(tiny_svlm("qwen2_5_vl")),
                           "time_tag_template": "<{t:.1f} seconds>"})  # fmt: skip


@torch.no_grad()
def test_cached_prefixes_give_the_full_forward(tiny_svlm):
    """The question continues after the prefix's last token, not after its largest position: with
    absolute time the temporal axis of a 4-patch video runs past the spatial ones."""
    from tempo_kit.video import make_segments

    compressor = COMPRESSORS.build({"name": "qwen2_5_vl", "pretrained": str(tiny_svlm("qwen2_5_vl")), "k_max": 4,
                                    "dtype": "float32"}).eval()  # fmt: skip
    frames = torch.randint(0, 256, (21, 56, 84, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    segments = make_segments(frames, 8, kind="video", real_fps=2.0)
    queries = ["Where is it?", "a longer question about the end?", "when?"]
    whole = compressor([segments] * 3, queries)
    cached = compressor.compress_with_prefixes(compressor.encode_prefixes(segments, [0, 1, 2]), queries)
    picks = [0, 4, 8]  # segment j of sample j
    torch.testing.assert_close(cached.memory, whole.memory[picks], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cached.relevance, whole.relevance[picks], atol=1e-6, rtol=1e-5)
