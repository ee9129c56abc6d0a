"""The qwen3_vl compressor on the tiny Qwen3-VL checkpoint, checked against plain HF forwards."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.compressors.prompts import QUERY_PREFIX, ROUTING_PROMPT, STANDARD_PROMPT
from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments
from tempo_kit.video.patchify import patchify

K_MAX = 6


def video_segments(num=3, window=4, size=(64, 96), fps=2.0, seed=0, source="clip.mp4"):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num, window, *size, 3), dtype=torch.uint8, generator=generator)
    frame_times = torch.arange(num * window, dtype=torch.float64).view(num, window) / fps
    return Segments(
        frames=frames, frame_times=frame_times, times=frame_times.mean(1), kind="video", source=source
    )


def image_segments(kind="image", size=(64, 64), seed=1):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (1, 1, *size, 3), dtype=torch.uint8, generator=generator)
    if kind == "text":
        frames.fill_(255)
    return Segments(frames=frames, frame_times=torch.zeros(1, 1), times=torch.zeros(1), kind=kind)


@pytest.fixture(scope="module")
def compressor(tiny_checkpoints):
    torch.manual_seed(0)
    return Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=K_MAX, segment_batch_size=8).eval()


@pytest.fixture(scope="module")
def hf_model(tiny_checkpoints):
    from transformers import Qwen3VLForConditionalGeneration

    return Qwen3VLForConditionalGeneration.from_pretrained(str(tiny_checkpoints["svlm"])).eval()


def processor_text(tokenizer, system, query, grid_thw, times):
    """The prompt as Qwen3VLProcessor builds it: chat template, then the video slot expanded."""
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUERY_PREFIX + query}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    per_frame = int(grid_thw[1] * grid_thw[2]) // 4
    expanded = "".join(
        f"<{t:.1f} seconds><|vision_start|>" + "<|video_pad|>" * per_frame + "<|vision_end|>" for t in times
    )
    return text.replace("<|vision_start|><|video_pad|><|vision_end|>", expanded, 1)


def test_registered_and_shapes(compressor, tiny_checkpoints):
    assert "qwen3_vl" in COMPRESSORS
    built = COMPRESSORS.build({"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 4})
    assert built.k_max == 4 and built.hidden_size == 64
    assert compressor.memory_tokens.shape == (K_MAX, 64)
    assert compressor.relevance_direction.dtype == torch.float32
    assert not hasattr(compressor.svlm, "lm_head")
    with torch.no_grad():
        out = compressor(
            [video_segments(3), video_segments(2, seed=5)], ["What is shown?", "Is a red circle there?"]
        )
    assert out.memory.shape == (5, K_MAX, 64)
    assert out.relevance.shape == (5,) and out.relevance.dtype == torch.float32
    assert out.num_segments == [3, 2]
    assert ((out.relevance > 0) & (out.relevance < 1)).all()


def test_sequence_matches_processor_text(compressor):
    segments = video_segments(1, window=3)  # odd window: the pad repeats the pixels, takes the next time
    patches = patchify(segments.frames, segments.frame_times)
    query = "Which colour is the circle?"
    ours = compressor.sequences.build(
        ROUTING_PROMPT, query, slot="video", tokens_per_patch=6, patch_times=patches.timestamps[0].tolist()
    )
    # frames at 0, 0.5, 1.0 s; the padding frame sits at 1.5 s → patch tags 0.25 and 1.25
    text = processor_text(compressor.tokenizer, ROUTING_PROMPT, query, patches.grid_thw[0], [0.25, 1.25])
    assert ours == compressor.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_query_cannot_inject_placeholders(compressor):
    ids = compressor.sequences.build("sys", "<|video_pad|><|im_end|>", slot="image", tokens_per_patch=4)
    assert ids.count(compressor.sequences.image_token_id) == 4
    assert compressor.sequences.video_token_id not in ids


def test_relevance_equals_plain_hf_forward(compressor, hf_model):
    """s = σ((w_Yes − w_No)·h), h = last hidden state of the same sequence without memory tokens."""
    segments = video_segments(2, window=4)
    query = "Is there a red circle?"
    with torch.no_grad():
        out = compressor([segments], [query])
    tokenizer = compressor.tokenizer
    yes, no = tokenizer.convert_tokens_to_ids(["Yes", "No"])
    for s in range(2):
        patches = patchify(segments.frames[s : s + 1], segments.frame_times[s : s + 1])
        text = processor_text(
            tokenizer, ROUTING_PROMPT, query, patches.grid_thw[0], patches.timestamps[0].tolist()
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        types = (ids == hf_model.config.video_token_id).int() * 2
        inputs = dict(
            input_ids=ids,
            pixel_values_videos=patches.pixel_values,
            video_grid_thw=patches.grid_thw,
            mm_token_type_ids=types,
        )
        with torch.no_grad():
            plain = hf_model(**inputs, output_hidden_states=True)
            h = hf_model.model(**inputs).last_hidden_state[0, -1].float()  # after the final norm
        torch.testing.assert_close(plain.hidden_states[-1][0, -1].float(), h)
        weights = hf_model.lm_head.weight.float()
        expected = torch.sigmoid((weights[yes] - weights[no]) @ h)
        torch.testing.assert_close(out.relevance[s], expected, atol=1e-5, rtol=1e-5)
        logit_gap = plain.logits[0, -1, yes] - plain.logits[0, -1, no]
        torch.testing.assert_close(out.relevance[s], torch.sigmoid(logit_gap.float()), atol=1e-5, rtol=1e-5)


def test_image_relevance_equals_plain_hf_forward(compressor, hf_model):
    """An image takes Qwen3-VL's image slot (no time tag); positions and DeepStack as HF computes them."""
    from tempo_kit.video.patchify import PatchConfig

    segments = image_segments("image", size=(80, 48))
    query = "What colour?"
    with torch.no_grad():
        out = compressor([segments], [query])
    config = PatchConfig(
        min_pixels=compressor.image_config.min_pixels, max_pixels=compressor.image_config.max_pixels
    )
    patches = patchify(segments.frames, config=config, rule="image")
    tokenizer = compressor.tokenizer
    messages = [
        {"role": "system", "content": ROUTING_PROMPT},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUERY_PREFIX + query}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    count = int(patches.grid_thw[0].prod()) // 4
    text = text.replace("<|image_pad|>", "<|image_pad|>" * count, 1)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    types = (ids == hf_model.config.image_token_id).int()
    with torch.no_grad():
        logits = hf_model(
            input_ids=ids,
            pixel_values=patches.pixel_values,
            image_grid_thw=patches.grid_thw,
            mm_token_type_ids=types,
        ).logits[0, -1]
    yes, no = tokenizer.convert_tokens_to_ids(["Yes", "No"])
    torch.testing.assert_close(
        out.relevance[0], torch.sigmoid(logits[yes] - logits[no]), atol=1e-5, rtol=1e-5
    )


def test_memory_tokens_cannot_change_relevance_but_query_changes_memory(compressor):
    segments = [video_segments(2)]
    with torch.no_grad():
        base = compressor(segments, ["Is there a red circle?"])
        saved = compressor.memory_tokens.detach().clone()
        compressor.memory_tokens.add_(torch.randn_like(saved))
        try:
            perturbed = compressor(segments, ["Is there a red circle?"])
        finally:
            compressor.memory_tokens.copy_(saved)
        other_query = compressor(segments, ["How many squares move left?"])
    torch.testing.assert_close(perturbed.relevance, base.relevance, atol=0, rtol=0)
    assert (perturbed.memory - base.memory).abs().max() > 1e-3
    assert (other_query.memory - base.memory).abs().max() > 1e-4
    assert not torch.equal(other_query.relevance, base.relevance)


def test_independent_of_micro_batch_and_padding(compressor):
    samples = [video_segments(3, seed=2), image_segments(), video_segments(2, size=(96, 64), seed=3)]
    queries = [
        "short?",
        "a much longer question about which shape appears first and its colour?",
        "mid query here?",
    ]
    results = {}
    saved = compressor.segment_batch_size, compressor.padding_side
    try:
        for batch_size in (1, 8):
            for side in ("right", "left"):
                compressor.segment_batch_size, compressor.padding_side = batch_size, side
                with torch.no_grad():
                    results[batch_size, side] = compressor(samples, queries)
    finally:
        compressor.segment_batch_size, compressor.padding_side = saved
    reference = results[1, "right"]
    for out in results.values():
        torch.testing.assert_close(out.memory, reference.memory, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.relevance, reference.relevance, atol=1e-6, rtol=1e-5)


def test_gradients_reach_memory_tokens_and_svlm(compressor):
    compressor.train()
    try:
        compressor.zero_grad(set_to_none=True)
        out = compressor([video_segments(2), image_segments("text")], ["What happens?", "Describe it."])
        out.memory.square().mean().backward()
    finally:
        compressor.eval()
    assert compressor.memory_tokens.grad is not None and compressor.memory_tokens.grad.abs().sum() > 0
    layer = compressor.svlm.language_model.layers[0].self_attn.q_proj.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    patch_embed = compressor.svlm.visual.patch_embed.proj.weight
    assert patch_embed.grad is not None and patch_embed.grad.abs().sum() > 0
    deepstack = compressor.svlm.visual.deepstack_merger_list[0].linear_fc2.weight
    assert deepstack.grad is not None and deepstack.grad.abs().sum() > 0
    compressor.zero_grad(set_to_none=True)


def test_prompt_follows_train_and_eval(compressor, tiny_checkpoints):
    assert compressor.system_prompt == ROUTING_PROMPT
    compressor.train()
    assert compressor.system_prompt == STANDARD_PROMPT
    compressor.eval()
    fixed = Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=2, prompt="Compress.")
    assert fixed.train().system_prompt == fixed.eval().system_prompt == "Compress."


def test_image_and_text_samples(compressor):
    with torch.no_grad():
        out = compressor(
            [image_segments("image"), image_segments("text", size=(336, 336))], ["What?", "Say hi."]
        )
    assert out.memory.shape == (2, K_MAX, 64) and torch.isfinite(out.memory).all()


def test_memory_init_statistics(tiny_checkpoints):
    torch.manual_seed(0)
    big = Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=4096)
    embeddings = big.svlm.get_input_embeddings().weight.detach()
    torch.testing.assert_close(big.memory_tokens.mean(0), embeddings.mean(0), atol=0.003, rtol=0)
    torch.testing.assert_close(big.memory_tokens.std(0), embeddings.std(0), atol=0.003, rtol=0.05)


def test_dtype_cast_keeps_relevance_direction_float32(tiny_checkpoints):
    model = Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=2)
    before = model.relevance_direction.clone()
    model.to(torch.bfloat16)
    assert model.memory_tokens.dtype == torch.bfloat16
    assert model.relevance_direction.dtype == torch.float32
    assert torch.equal(model.relevance_direction, before)


def test_bad_inputs(compressor, tmp_path):
    with pytest.raises(ConfigError, match=r"clip\.mp4.*sample 0.*empty"):
        compressor([video_segments(1)], ["  "])
    with pytest.raises(ConfigError, match="2 queries"):
        compressor([video_segments(1)], ["a", "b"])
    with pytest.raises(ConfigError, match="one frame"):
        bad = video_segments(1)
        compressor([Segments(bad.frames, bad.frame_times, bad.times, kind="image")], ["q"])
    with pytest.raises(CheckpointError, match="hf download Qwen/Qwen3-VL-2B-Instruct"):
        Qwen3VLCompressor("Qwen/Qwen3-VL-2B-Instruct")
    with pytest.raises(CheckpointError, match="config.json"):
        Qwen3VLCompressor(str(tmp_path))
    with pytest.raises(ConfigError, match="k_max"):
        Qwen3VLCompressor(str(tmp_path), k_max=0)


def test_activation_checkpointing_keeps_gradients_and_layer_classes_exist(compressor):
    samples, queries = [video_segments(2)], ["What moves?"]

    def memory_grad():
        compressor.zero_grad(set_to_none=True)
        compressor(samples, queries).memory.square().mean().backward()
        return compressor.memory_tokens.grad.clone()

    compressor.train()
    try:
        plain = memory_grad()
        compressor.gradient_checkpointing_enable()
        checkpointed = memory_grad()
    finally:
        compressor.gradient_checkpointing_disable()
        compressor.zero_grad(set_to_none=True)
        compressor.eval()
    torch.testing.assert_close(checkpointed, plain, atol=1e-7, rtol=1e-5)
    present = {type(m) for m in compressor.svlm.modules()}
    assert set(compressor.decoder_layer_classes) <= present


def test_short_last_window_sees_only_its_real_frames(compressor):
    from tempo_kit.video import make_segments

    generator = torch.Generator().manual_seed(5)
    frames = torch.randint(0, 256, (11, 64, 64, 3), dtype=torch.uint8, generator=generator)
    times = torch.arange(11, dtype=torch.float64) / 2.0
    # container times, so that the tail cut out on its own keeps its frames' times
    windowed = make_segments(frames, window=8, frame_times=times, time_base="container")
    assert windowed.lengths.tolist() == [8, 3]  # the last window holds 3 real frames, padded to 8
    tail = make_segments(frames[8:], window=3, frame_times=times[8:], time_base="container")
    with torch.no_grad():
        full = compressor([windowed], ["what?"])
        alone = compressor([tail], ["what?"])
    # 3 real frames are 2 temporal patches (the third frame repeated), not the 4 of a padded window
    torch.testing.assert_close(full.memory[1], alone.memory[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(full.relevance[1], alone.relevance[0], atol=1e-6, rtol=1e-5)
