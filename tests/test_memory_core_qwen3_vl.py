"""The memory-token core changes not one bit of qwen3_vl's memory, relevance or gradients.

``frozen_*`` below is the qwen3_vl forward as it was written before the core existed (one module,
no adapter), kept verbatim as the reference: the core's output must be ``torch.equal`` to it,
so any reordering of a sum, a cast or a different position rule fails here even when it moves a
value by one ulp. Both run the same weights in the same process, so the comparison holds on any
machine.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from test_compressor_qwen3_vl import image_segments

from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
from tempo_kit.compressors.visual import patch_segments
from tempo_kit.video import make_segments

K_MAX = 5


# ---------------------------------------------------------------- the pre-core implementation
def frozen_pad(c, sequences, device, padding_side):
    width = max(len(s) for s in sequences) + c.k_max
    input_ids = torch.full((len(sequences), width), c.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    memory_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    last_real = torch.empty(len(sequences), dtype=torch.long)
    for row, ids in enumerate(sequences):
        start = 0 if padding_side == "right" else width - len(ids) - c.k_max
        end = start + len(ids)
        input_ids[row, start:end] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, start : end + c.k_max] = 1
        memory_mask[row, end : end + c.k_max] = True
        last_real[row] = end - 1
    return input_ids.to(device), attention_mask.to(device), memory_mask.to(device), last_real.to(device)


def frozen_visual_inputs(patches, device):
    visual = {}
    video = [p for p in patches if p.slot == "video"]
    image = [p for p in patches if p.slot == "image"]
    if video:
        visual["pixel_values_videos"] = torch.cat([p.pixel_values for p in video]).to(device)
        visual["video_grid_thw"] = torch.stack([p.grid_thw for p in video]).to(device)
    if image:
        visual["pixel_values"] = torch.cat([p.pixel_values for p in image]).to(device)
        visual["image_grid_thw"] = torch.stack([p.grid_thw for p in image]).to(device)
    return visual


def frozen_positions(c, input_ids, attention_mask, visual):
    token_types = torch.zeros_like(input_ids, dtype=torch.int32)
    token_types[input_ids == c.sequences.image_token_id] = 1
    token_types[input_ids == c.sequences.video_token_id] = 2
    position_ids, _ = c.svlm.get_rope_index(
        input_ids,
        mm_token_type_ids=token_types,
        image_grid_thw=visual.get("image_grid_thw"),
        video_grid_thw=visual.get("video_grid_thw"),
        attention_mask=attention_mask,
    )
    return position_ids


def frozen_with_memory(c, embeds, memory_mask):
    memory = c.memory_tokens.to(embeds.dtype).expand(embeds.shape[0], -1, -1)
    return embeds.masked_scatter(memory_mask.unsqueeze(-1), memory)


def frozen_read_out(c, hidden, memory_mask, last_real):
    rows = hidden.shape[0]
    memory_states = hidden[memory_mask].view(rows, c.k_max, -1)
    query_state = hidden[torch.arange(rows, device=hidden.device), last_real]
    relevance = torch.sigmoid((query_state.float() * c.relevance_direction).sum(-1))
    return memory_states, relevance


def frozen_prefix_ids(c, p, prompt):
    return c.sequences.prefix(prompt, slot=p.slot, tokens_per_patch=p.tokens_per_patch, patch_times=p.times)


def frozen_forward(c, segments, queries, padding_side="right"):
    items = [(i, j) for i, sample in enumerate(segments) for j in range(len(sample))]
    device = c.memory_tokens.device
    patches = patch_segments(segments, items, c.video_config, c.image_config, device)
    prompt = c.system_prompt
    sequences = [frozen_prefix_ids(c, p, prompt) + c.sequences.suffix(queries[i]) for p, (i, _) in zip(patches, items)]
    input_ids, attention_mask, memory_mask, last_real = frozen_pad(c, sequences, device, padding_side)
    visual = frozen_visual_inputs(patches, device)
    position_ids = frozen_positions(c, input_ids, attention_mask, visual)
    embeds = frozen_with_memory(c, c.svlm.get_input_embeddings()(input_ids), memory_mask)
    hidden = c.svlm(
        inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **visual
    ).last_hidden_state
    return frozen_read_out(c, hidden, memory_mask, last_real)


def frozen_prefix_forward(c, segments, indices, queries):
    """encode_prefixes + compress_with_prefixes as they were."""
    from transformers import DynamicCache

    device = c.memory_tokens.device
    patches = patch_segments([segments], [(0, j) for j in indices], c.video_config, c.image_config, device)
    sequences = [frozen_prefix_ids(c, p, c.system_prompt) for p in patches]
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), c.pad_token_id, dtype=torch.long, device=device)
    attention_mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
        attention_mask[row, : len(ids)] = 1
    visual = frozen_visual_inputs(patches, device)
    position_ids = frozen_positions(c, input_ids, attention_mask, visual)
    out = c.svlm(inputs_embeds=c.svlm.get_input_embeddings()(input_ids), attention_mask=attention_mask,
                 position_ids=position_ids, use_cache=True, **visual)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    lengths = [len(s) for s in sequences]
    prefix_width = max(lengths)
    layers = []
    for layer in cache.layers:
        keys = torch.zeros(len(sequences), *layer.keys.shape[1:2], prefix_width, layer.keys.shape[3])
        values = torch.zeros_like(keys)
        for row, n in enumerate(lengths):
            keys[row, :, prefix_width - n :] = layer.keys[row, :, :n]
            values[row, :, prefix_width - n :] = layer.values[row, :, :n]
        layers.append((keys, values))
    prefix_mask = torch.zeros(len(sequences), prefix_width, dtype=torch.long)
    for row, n in enumerate(lengths):
        prefix_mask[row, prefix_width - n :] = 1
    start = torch.tensor([int(position_ids[:, row, :n].max()) + 1 for row, n in enumerate(lengths)])
    suffixes = [c.sequences.suffix(q) for q in queries]
    ids, suffix_mask, memory_mask, last_real = frozen_pad(c, suffixes, device, "right")
    columns = torch.arange(ids.shape[1])
    positions = (start[:, None] + columns[None, :]).unsqueeze(0).expand(3, -1, -1)
    embeds = frozen_with_memory(c, c.svlm.get_input_embeddings()(ids), memory_mask)
    cache_key = "cache" if "cache" in inspect.signature(c.svlm.forward).parameters else "past_key_values"
    hidden = c.svlm(inputs_embeds=embeds, attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
                    position_ids=positions, use_cache=True,
                    **{cache_key: DynamicCache(ddp_cache_data=layers)}).last_hidden_state
    return frozen_read_out(c, hidden, memory_mask, last_real)


# ---------------------------------------------------------------- the comparisons
@pytest.fixture(scope="module")
def video():
    """Windows of 8, 8 and a short 5 (3 temporal patches): rows of different lengths get padded."""
    frames = torch.randint(0, 256, (21, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    return make_segments(frames, 8, kind="video", real_fps=2.0)


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def compressor(request, tiny_checkpoints):
    torch.manual_seed(0)
    return Qwen3VLCompressor(str(tiny_checkpoints["svlm"]), k_max=K_MAX, dtype=request.param).eval()


def assert_bit_equal(got, want):
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b), f"max difference {(a.float() - b.float()).abs().max().item()}"


@torch.no_grad()
def test_video_and_image_batches_equal_the_pre_core_forward(compressor, video):
    queries = ["Where is the red ball?", "What is shown?"]
    samples = [video, image_segments()]
    out = compressor(samples, queries)
    assert_bit_equal((out.memory, out.relevance), frozen_forward(compressor, samples, queries))


@pytest.mark.slow
@torch.no_grad()
def test_left_padding_and_training_prompt_equal_the_pre_core_forward(compressor, video):
    compressor.padding_side = "left"
    compressor.train()
    try:
        out = compressor([video, image_segments("text")], ["How many?", "Is it blue?"])
        want = frozen_forward(compressor, [video, image_segments("text")], ["How many?", "Is it blue?"], "left")
    finally:
        compressor.padding_side = "right"
        compressor.eval()
    assert_bit_equal((out.memory, out.relevance), want)


@torch.no_grad()
def test_prefix_cache_path_equals_the_pre_core_one(compressor, video):
    if compressor.memory_tokens.dtype != torch.float32:
        pytest.skip("the frozen prefix reference stacks float32 keys")
    queries = ["first question?", "a much longer second question about the end?", "third"]
    prefixes = compressor.encode_prefixes(video, [0, 1, 2])
    got = compressor.compress_with_prefixes(prefixes, queries)
    assert_bit_equal((got.memory, got.relevance), frozen_prefix_forward(compressor, video, [0, 1, 2], queries))


@pytest.mark.slow
def test_memory_token_gradients_equal_the_pre_core_ones(compressor, video):
    def gradient(run):
        compressor.zero_grad()
        memory, relevance = run()
        (memory.float().square().sum() + relevance.sum()).backward()
        return compressor.memory_tokens.grad.clone()

    queries = ["Where is the red ball?"]
    core = gradient(lambda: (lambda out: (out.memory, out.relevance))(compressor([video], queries)))
    frozen = gradient(lambda: frozen_forward(compressor, [video], queries))
    compressor.zero_grad()
    assert torch.equal(core, frozen)
