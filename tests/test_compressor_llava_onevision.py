"""The llava_onevision compressor builds LLaVA-OneVision's own input: ids as ``LlavaOnevisionProcessor``
expands the released chat template for the same frames, pixels as its processor resizes them, and
the same relevance as Hugging Face's own model computes from those ids and pixels."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from tempo_kit.compressors.prompts import QUERY_PREFIX, ROUTING_PROMPT
from tempo_kit.errors import ConfigError
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

QUERY = "Which colour is the circle?"
FPS = 2.0


@pytest.fixture(scope="module")
def compressor(tiny_svlm):
    return COMPRESSORS.build({"name": "llava_onevision", "pretrained": str(tiny_svlm("llava_onevision")),
                              "k_max": 4, "dtype": "float32"}).eval()  # fmt: skip


def clip(num=3, window=4, size=(64, 96), lengths=(4, 4, 2), start=0.0) -> Segments:
    """Three segments, the last one shorter (as a video's last window is), at a size that needs a resize."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=g)
    times = start + torch.arange(num * window, dtype=torch.float64).view(num, window) / FPS
    return Segments(frames, times, times.mean(1), kind="video", lengths=torch.tensor(lengths))


def processor_ids(tokenizer, frames: int) -> list[int]:
    """The released chat template, then ``<video>`` expanded by ``LlavaOnevisionProcessor``'s own code."""
    from transformers import LlavaOnevisionProcessor

    messages = [
        {"role": "system", "content": [{"type": "text", "text": ROUTING_PROMPT}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUERY_PREFIX + QUERY}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    holder = SimpleNamespace(num_image_tokens=9, video_token="<video>")  # 42-pixel frames, 14-pixel patches
    expanded = LlavaOnevisionProcessor.replace_video_token(holder, {"pixel_values_videos": [torch.zeros(frames)]}, 0)
    return tokenizer(text.replace("<video>", expanded, 1), add_special_tokens=False)["input_ids"]


def test_video_ids_match_the_processor(compressor):
    segments = clip()
    adapter = compressor.adapter
    visuals = adapter.encode_visual([segments], [(0, 0), (0, 1), (0, 2)], "cpu")
    for visual, frames in zip(visuals, (4, 4, 2)):
        assert adapter.sequence_ids(visual, ROUTING_PROMPT, QUERY) == processor_ids(compressor.tokenizer, frames)
    assert compressor.segment_tokens(segments, QUERY) == [
        len(adapter.sequence_ids(v, ROUTING_PROMPT, QUERY)) + 4 for v in visuals
    ]


def test_pixels_match_the_processor(compressor):
    """The base image of LLaVA-OneVision's (PIL) processor is the frame resized to the square, as its
    video processor makes every frame; the PIL and torch bicubics differ by at most two uint8 levels."""
    from PIL import Image
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    segments = clip()
    ours = compressor.adapter.encode_visual([segments], [(0, 0)], "cpu")[0].pixels
    processor = LlavaOnevisionImageProcessorPil(size={"height": 42, "width": 42}, image_mean=[0.5] * 3,
                                                image_std=[0.5] * 3, image_grid_pinpoints=[[42, 42]])  # fmt: skip
    for f in range(4):
        hf = processor(Image.fromarray(segments.frames[0, f].numpy()), return_tensors="pt")["pixel_values"][0, 0]
        levels = (ours[f] - hf.float()).abs() * 255 * 0.5
        assert levels.max() <= 2 + 1e-3
        assert (levels > 0.01).float().mean() <= 0.02


@torch.no_grad()
def test_relevance_equals_hugging_faces_model_on_the_processor_input(compressor, tiny_svlm):
    """The state before the memory tokens sees only what precedes it, so the relevance must equal
    ``sigmoid(logit_Yes − logit_No)`` of ``LlavaOnevisionForConditionalGeneration`` run on the
    processor's ids and pixel values, one video at a time (rows of 4, 4 and 2 frames)."""
    from transformers import LlavaOnevisionForConditionalGeneration

    hf = LlavaOnevisionForConditionalGeneration.from_pretrained(str(tiny_svlm("llava_onevision")), dtype=torch.float32)
    segments = clip()
    ours = compressor([segments], [QUERY]).relevance
    yes, no = (compressor.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))
    visuals = compressor.adapter.encode_visual([segments], [(0, 0), (0, 1), (0, 2)], "cpu")
    for j, (visual, frames) in enumerate(zip(visuals, (4, 4, 2))):
        ids = torch.tensor([processor_ids(compressor.tokenizer, frames)])
        logits = hf(input_ids=ids, pixel_values_videos=visual.pixels[None]).logits[0, -1]
        torch.testing.assert_close(ours[j], torch.sigmoid(logits[yes] - logits[no]), atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_cached_prefixes_give_the_full_forward(compressor):
    segments = clip()
    queries = ["Where is it?", "a longer question about the end?", "when?"]
    whole = compressor([segments] * 3, queries)
    cached = compressor.compress_with_prefixes(compressor.encode_prefixes(segments, [0, 1, 2]), queries)
    picks = [0, 4, 8]  # segment j of sample j
    torch.testing.assert_close(cached.memory, whole.memory[picks], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cached.relevance, whole.relevance[picks], atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_time_is_not_told(compressor):
    """The released model sees frames in order only: the same frames shown later compress the same."""
    early, late = compressor([clip()], [QUERY]), compressor([clip(start=600.0)], [QUERY])
    assert torch.equal(early.memory, late.memory) and torch.equal(early.relevance, late.relevance)


def test_what_it_cannot_read_is_refused_at_build(tiny_svlm, tmp_path):
    spec = {"name": "llava_onevision", "pretrained": str(tiny_svlm("llava_onevision")), "k_max": 4}
    with pytest.raises(ConfigError, match=r"'llava_onevision' tells time by 'none', not per-patch time tags"):
        COMPRESSORS.build({**spec, "time_tag_template": "<{t:.1f} seconds>"})
    folder = shutil.copytree(spec["pretrained"], tmp_path / "default_strategy")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vision_feature_select_strategy": "default"}))
    with pytest.raises(ConfigError, match=r"vision_feature_select_strategy='default'.*'full'"):
        COMPRESSORS.build({**spec, "pretrained": str(folder)})
    (folder / "config.json").write_text(json.dumps({**config, "video_token_index": config["video_token_index"] + 1}))
    with pytest.raises(ConfigError, match=r"tokenizer and config of .*default_strategy' disagree on <video>"):
        COMPRESSORS.build({**spec, "pretrained": str(folder)})  # the model fills another id with pixels


@torch.no_grad()
def test_a_meta_build_then_load_equals_a_direct_build(compressor, tiny_svlm):
    """SigLIP's position ids are a computed buffer of a model nested in LLaVA's: after ``to_empty``
    they must be recomputed by SigLIP's own init, without touching the loaded weights."""
    from tempo_kit.hf import load_tensors, to_empty_keeping_ties

    with torch.device("meta"):
        meta = COMPRESSORS.build({"name": "llava_onevision", "pretrained": str(tiny_svlm("llava_onevision")),
                                  "k_max": 4, "dtype": "float32"})  # fmt: skip
    load_tensors(to_empty_keeping_ties(meta), compressor.state_dict(), "meta-built compressor")
    for (name, a), (_, b) in zip(compressor.named_buffers(), meta.eval().named_buffers()):
        assert torch.equal(a, b), name
    for key, value in compressor.state_dict().items():
        assert torch.equal(value, meta.state_dict()[key]), key
    assert torch.equal(compressor([clip()], [QUERY]).memory, meta([clip()], [QUERY]).memory)
