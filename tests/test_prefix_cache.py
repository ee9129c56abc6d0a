"""The qwen3_vl compressor's prefix cache: cached prefix + question equals the whole sequence (fp32)."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.compressors.prefix_cache import PrefixCaching, prefix_cache_bytes
from tempo_kit.compressors.prompts import QUERY_PREFIX
from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
from tempo_kit.compressors.visual import patch_segments
from tempo_kit.flops import decoder_flops
from tempo_kit.video import make_segments

K_MAX = 6
FIRST = "Where is the red ball?"
LONGER = "What happens at the very end of the video, after the dog jumps over the fence twice?"


@pytest.fixture(scope="module")
def compressor(tiny_checkpoints):
    torch.manual_seed(0)
    return Qwen3VLCompressor(
        str(tiny_checkpoints["svlm"]), k_max=K_MAX, segment_batch_size=2, dtype="float32"
    ).eval()


@pytest.fixture(scope="module")
def segments():
    """21 frames in windows of 8: 8, 8 and a short last window of 5 (3 temporal patches)."""
    frames = torch.randint(0, 256, (21, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return make_segments(frames, 8, kind="video", real_fps=2.0)


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def test_prefix_and_suffix_spell_the_whole_sequence(compressor, tiny_tokenizer):
    builder = compressor.sequences
    for query in (FIRST, " leading space", "\nleading newline", "<|video_pad|> injected?"):
        prefix = builder.prefix("sys", slot="video", tokens_per_patch=3, patch_times=[0.5, 1.5])
        whole = builder.build("sys", query, slot="video", tokens_per_patch=3, patch_times=[0.5, 1.5])
        assert prefix + builder.suffix(query) == whole
        assert prefix[-1] == builder.ids["<|vision_end|>"]
    # the suffix by hand: "\nQuery:\n"+query, <|im_end|>, "\n", <|im_start|>, "assistant\n"
    ids = builder.ids
    by_hand = [
        *encode(tiny_tokenizer, QUERY_PREFIX + FIRST),
        ids["<|im_end|>"],
        *encode(tiny_tokenizer, "\n"),
        ids["<|im_start|>"],
        *encode(tiny_tokenizer, "assistant\n"),
    ]
    assert builder.suffix(FIRST) == by_hand


@torch.no_grad()
def test_cached_prefixes_give_the_full_forward_memory_and_relevance(compressor, segments):
    assert isinstance(compressor, PrefixCaching)
    assert segments.lengths.tolist() == [8, 8, 5]
    prefixes = compressor.encode_prefixes(segments, [0, 1, 2])
    # the short last window has 3 temporal patches, the others 4: shorter prefix, left-padded in a batch
    assert prefixes[2].length < prefixes[0].length == prefixes[1].length
    for query in (FIRST, LONGER):  # the second question is longer than the first
        full = compressor([segments], [query])  # micro-batches of 2 segments
        cached = compressor.compress_with_prefixes(prefixes, [query] * 3)  # one batch of 3
        assert cached.memory.shape == full.memory.shape == (3, K_MAX, compressor.hidden_size)
        assert (cached.memory - full.memory).abs().max() < 1e-5
        assert (cached.relevance - full.relevance).abs().max() < 1e-5
        reordered = compressor.compress_with_prefixes([prefixes[2], prefixes[0]], [query, query])
        assert (reordered.memory - full.memory[[2, 0]]).abs().max() < 1e-5
        # tokens computed: only the question part and the memory tokens of each segment
        assert cached.tokens == 3 * (len(compressor.sequences.suffix(query)) + K_MAX)


@torch.no_grad()
def test_prefix_is_the_uncached_sequence_head_and_its_size(compressor, segments):
    patches = patch_segments([segments], [(0, 0), (0, 1), (0, 2)], compressor.video_config, compressor.image_config)
    prefixes = compressor.encode_prefixes(segments, [0, 1, 2])
    text = compressor.svlm.config.text_config
    for p, prefix in zip(patches, prefixes):
        whole = compressor.sequences.build(
            compressor.system_prompt, FIRST, slot="video", tokens_per_patch=p.tokens_per_patch, patch_times=p.times
        )
        assert prefix.length == len(whole) - len(compressor.sequences.suffix(FIRST))
        # keys + values, every layer, fp32: 2 × 3 layers × 2 kv heads × 16 dims × 4 bytes per token
        assert prefix.nbytes == 2 * 3 * 2 * 16 * 4 * prefix.length
        assert prefix_cache_bytes(text, prefix.length, torch.float32) == prefix.nbytes
        assert len(prefix.keys) == text.num_hidden_layers and prefix.keys[0].shape == (2, prefix.length, 16)


def test_flops_of_a_cached_question_count_the_prefix_in_attention_only():
    config = {
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 4, "vocab_size": 10,
    }
    # per token: 2·(8·8 + 2·8·4 + 8·8 + 3·8·16) = 1152; attention 4·pairs·q with q = 8
    alone = decoder_flops(config, [5], lm_head=False)["layers"]
    assert alone == 2 * (5 * 1152 + 4 * 25 * 8)
    cached = decoder_flops(config, [5], lm_head=False, past_lengths=[7])["layers"]
    assert cached == 2 * (5 * 1152 + 4 * 5 * (7 + 5) * 8)
    half = decoder_flops(config, [5], lm_head=False, causal="half", past_lengths=[7])["layers"]
    assert half == 2 * (5 * 1152 + 4 * (15 + 35) * 8)
