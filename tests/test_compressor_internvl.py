"""The internvl compressor builds InternVL 3's own input: ids as ``InternVLProcessor`` expands its
chat template for the same frames, pixels as its image processor makes them; its prefix cache
gives a follow-up question what a fresh one gets."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tempo_kit.compressors.prompts import QUERY_PREFIX, ROUTING_PROMPT
from tempo_kit.errors import ConfigError
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

QUERY = "Which colour is the circle?"


@pytest.fixture(scope="module")
def folder(tiny_svlm):
    return tiny_svlm("internvl")


@pytest.fixture(scope="module")
def compressor(folder):
    return COMPRESSORS.build({"name": "internvl", "pretrained": str(folder), "k_max": 4, "dtype": "float32"}).eval()


def clip(num=3, window=4, size=(64, 96), kind="video", lengths=None) -> Segments:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=g)
    times = torch.arange(num * window, dtype=torch.float64).view(num, window) / 2
    return Segments(frames, times, times.mean(1), kind=kind, lengths=lengths)


def processor_ids(folder, tokenizer, slot: str, frames: int = 1) -> list[int]:
    """The checkpoint's chat template, then the slot expanded by ``InternVLProcessor``'s own code
    (its replacement methods, on the markers the tokenizer names and the checkpoint's token count)."""
    from transformers.models.internvl.processing_internvl import InternVLProcessor

    messages = [
        {"role": "system", "content": ROUTING_PROMPT},
        {"role": "user", "content": [{"type": slot}, {"type": "text", "text": QUERY_PREFIX + QUERY}]},
    ]
    template = json.loads((folder / "chat_template.json").read_text())["chat_template"]
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)
    seq_length = json.loads((folder / "processor_config.json").read_text())["image_seq_length"]
    holder = SimpleNamespace(image_seq_length=seq_length, start_image_token=tokenizer.start_image_token,
                             end_image_token=tokenizer.end_image_token, image_token=tokenizer.context_image_token)  # fmt: skip
    if slot == "video":
        expanded = InternVLProcessor.replace_video_token(holder, {"pixel_values_videos": [torch.zeros(frames)]}, 0)
    else:
        expanded = InternVLProcessor.replace_image_token(holder, {"num_patches": [1]}, 0)
    return tokenizer(text.replace(f"<{slot}>", expanded, 1), add_special_tokens=False)["input_ids"]


def hf_pixels(folder, frames: torch.Tensor) -> torch.Tensor:
    """``GotOcr2ImageProcessorPil`` (InternVL's image processor) on each frame, one tile each."""
    from PIL import Image
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    config = json.loads((folder / "preprocessor_config.json").read_text())
    processor = GotOcr2ImageProcessorPil(size=config["size"], crop_to_patches=False, image_mean=config["image_mean"],
                                         image_std=config["image_std"])  # fmt: skip
    images = [Image.fromarray(frame.numpy()) for frame in frames]
    return processor(images, return_tensors="pt")["pixel_values"].float()


def assert_same_pixels(ours: torch.Tensor, hf: torch.Tensor, folder, resized: bool) -> None:
    """Equal; after a resize, within the bicubic rounding ``test_patchify`` allows (PIL's fixed point
    vs torch's float: a few pixels one or two uint8 levels apart)."""
    if not resized:
        torch.testing.assert_close(ours, hf, atol=1e-5, rtol=0)
        return
    std = torch.tensor(json.loads((folder / "preprocessor_config.json").read_text())["image_std"]).view(3, 1, 1)
    levels = (ours - hf).abs() * std * 255
    assert ours.shape == hf.shape and levels.max() <= 2 + 1e-3
    assert (levels > 0.01).float().mean() <= 0.01


def test_video_ids_and_pixels_match_the_processor(compressor, folder):
    segments = clip(lengths=torch.tensor([4, 4, 3]))  # a short last window: 3 frames, numbered 1–3
    adapter = compressor.adapter
    for j, count in enumerate([4, 4, 3]):
        tiles = adapter.encode_visual([segments], [(0, j)], "cpu")[0]
        ours = adapter.sequence_ids(tiles, ROUTING_PROMPT, QUERY)
        assert ours == processor_ids(folder, compressor.tokenizer, "video", count)
        assert_same_pixels(tiles.pixels, hf_pixels(folder, segments.frames[j, :count]), folder, resized=True)
    expected = [len(adapter.sequence_ids(t, ROUTING_PROMPT, QUERY)) + 4
                for t in adapter.encode_visual([segments], [(0, j) for j in range(3)], "cpu")]  # fmt: skip
    assert compressor.segment_tokens(segments, QUERY) == expected


@pytest.mark.parametrize("size", [(56, 56), (80, 50)])  # at the tower's square (no resize), and resized
def test_image_ids_and_pixels_match_the_processor(compressor, folder, size):
    image = clip(1, 1, size=size, kind="image")
    tiles = compressor.adapter.encode_visual([image], [(0, 0)], "cpu")[0]
    ours = compressor.adapter.sequence_ids(tiles, ROUTING_PROMPT, QUERY)
    assert ours == processor_ids(folder, compressor.tokenizer, "image")
    assert_same_pixels(tiles.pixels, hf_pixels(folder, image.frames[0]), folder, resized=size != (56, 56))


def test_a_follow_up_from_the_cached_prefix_equals_a_fresh_question(compressor):
    from tempo_kit.compressors.prefix_cache import PrefixCaching

    assert isinstance(compressor, PrefixCaching)
    segments = clip()
    with torch.no_grad():
        fresh = compressor([segments], ["Where is the square?"])
        prefixes = compressor.encode_prefixes(segments, [0, 1, 2])
        cached = compressor.compress_with_prefixes(prefixes, ["Where is the square?"] * 3)
    torch.testing.assert_close(cached.memory, fresh.memory, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached.relevance, fresh.relevance, atol=1e-6, rtol=0)


def test_explain_counts_the_frames_each_window_shows(compressor):
    """``infer --explain``: a short last window shows its real frames only, and its prefix is shorter."""
    segments = clip(lengths=torch.tensor([4, 4, 3]))
    assert compressor.describe_inputs(segments) == [{"frames": 4}, {"frames": 4}, {"frames": 3}]
    full, _, short = compressor.adapter.prefix_lengths(segments, "Describe.")
    assert full - short == compressor.adapter.tokens_per_tile + 2 + len(compressor.adapter._encode("\nFrame4: "))


def test_what_the_family_cannot_do_is_refused_at_build(folder, tmp_path):
    import shutil

    spec = {"name": "internvl", "pretrained": str(folder), "k_max": 4}
    with pytest.raises(ConfigError, match=r"'internvl' tells time by 'none', not per-patch time tags"):
        COMPRESSORS.build({**spec, "time_tag_template": "<{t:.1f} seconds>"})
    broken = shutil.copytree(folder, tmp_path / "svlm")
    config = json.loads((broken / "video_preprocessor_config.json").read_text())
    (broken / "video_preprocessor_config.json").write_text(json.dumps({**config, "size": {"height": 84, "width": 84}}))
    with pytest.raises(ConfigError, match=r"resizes frames to \[84, 84\] but the vision tower .* takes \[56, 56\]"):
        COMPRESSORS.build({**spec, "pretrained": str(broken)})
