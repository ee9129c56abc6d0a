"""The smolvlm compressor builds SmolVLM2's own input: ids as ``SmolVLMProcessor`` expands its chat
template for the same frames and times, pixels as its image processor makes them."""

from __future__ import annotations

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
    return COMPRESSORS.build({"name": "smolvlm", "pretrained": str(tiny_svlm("smolvlm")), "k_max": 4}).eval()


def clip(num=3, window=4, size=(64, 64)) -> Segments:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=g)
    times = torch.arange(num * window, dtype=torch.float64).view(num, window) / FPS
    return Segments(frames, times, times.mean(1), kind="video")


def processor_ids(tokenizer, slot: str, frames_indices=None) -> list[int]:
    """Chat template, then the slot expanded by ``SmolVLMProcessor``'s own replacement code."""
    from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE, SmolVLMProcessor
    from transformers.video_utils import VideoMetadata

    messages = [
        {"role": "system", "content": ROUTING_PROMPT},
        {"role": "user", "content": [{"type": slot}, {"type": "text", "text": QUERY_PREFIX + QUERY}]},
    ]
    text = tokenizer.apply_chat_template(messages, chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    holder = SimpleNamespace(image_seq_len=1, image_token="<image>", fake_image_token="<fake_token_around_image>",
                             global_image_token="<global-img>")  # fmt: skip
    if slot == "video":
        metadata = VideoMetadata(total_num_frames=100, fps=FPS, frames_indices=frames_indices)
        text = text.replace("<video>", SmolVLMProcessor.replace_video_token(holder, {"video_metadata": [metadata]}, 0))
    else:
        expanded = SmolVLMProcessor.replace_image_token(holder, {"rows": [[0]], "cols": [[0]]}, 0)
        text = text.replace("<image>", expanded, 1)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_video_ids_match_the_processor(compressor):
    segments = clip()
    adapter = compressor.adapter
    for j in range(3):  # frames 4j .. 4j+3 at 2 fps: their stamps are the video's absolute times
        frames = adapter.encode_visual([segments], [(0, j)], "cpu")[0]
        ours = adapter.sequence_ids(frames, ROUTING_PROMPT, QUERY)
        assert ours == processor_ids(compressor.tokenizer, "video", list(range(4 * j, 4 * j + 4)))
    assert compressor.segment_tokens(segments, QUERY) == [
        len(adapter.sequence_ids(adapter.encode_visual([segments], [(0, j)], "cpu")[0], ROUTING_PROMPT, QUERY)) + 4
        for j in range(3)
    ]


def test_a_short_last_window_shows_only_its_real_frames(compressor):
    """``lengths`` [4, 4, 2]: the last window's 2 real frames (times 4.0, 4.5 s), not its padding."""
    full = clip()
    segments = Segments(full.frames, full.frame_times, full.times, kind="video", lengths=torch.tensor([4, 4, 2]))
    frames = compressor.adapter.encode_visual([segments], [(0, 2)], "cpu")[0]
    assert frames.pixels.shape[0] == 2 and frames.times == [4.0, 4.5]
    ids = compressor.adapter.sequence_ids(frames, ROUTING_PROMPT, QUERY)
    assert ids == processor_ids(compressor.tokenizer, "video", [8, 9])


def test_image_ids_and_pixels_match_the_processor(compressor):
    from PIL import Image
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    frames = clip(1, 1).frames
    image = Segments(frames, torch.zeros(1, 1), torch.zeros(1), kind="image")
    visual = compressor.adapter.encode_visual([image], [(0, 0)], "cpu")[0]
    assert compressor.adapter.sequence_ids(visual, ROUTING_PROMPT, QUERY) == processor_ids(compressor.tokenizer, "image")
    hf = SmolVLMImageProcessorPil(do_image_splitting=False, max_image_size={"longest_edge": 64},
                                  size={"longest_edge": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3)(
        Image.fromarray(frames[0, 0].numpy()), return_tensors="pt")  # fmt: skip
    torch.testing.assert_close(visual.pixels, hf["pixel_values"][0].float(), atol=1e-6, rtol=0)


def test_it_has_no_prefix_cache_and_says_so_at_build(tiny_svlm):
    from tempo_kit.compressors.prefix_cache import PrefixCaching

    spec = {"name": "smolvlm", "pretrained": str(tiny_svlm("smolvlm")), "k_max": 4}
    with pytest.raises(ConfigError, match=r"'smolvlm' cannot cache a question-independent prefix"):
        COMPRESSORS.build({**spec, "require_prefix_cache": True})
    with pytest.raises(ConfigError, match=r"'smolvlm' tells time by 'per_frame', not per-patch time tags"):
        COMPRESSORS.build({**spec, "time_tag_template": "<{t:.1f} seconds>"})
    assert not isinstance(COMPRESSORS.build(spec), PrefixCaching)
