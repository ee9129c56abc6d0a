"""Decoder prompt layout, label masking, compressor queries and the Appendix E prompts."""

import pytest

from tempo_kit.compressors.prompts import ROUTING_PROMPT, STANDARD_PROMPT
from tempo_kit.model.prompts import (
    Turn,
    compressor_query,
    encode_decoder_prompt,
)
from tempo_kit.time_tags import format_time_tag
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID


def test_routing_prompt_is_standard_plus_yes_no_instruction():
    assert ROUTING_PROMPT.startswith(STANDARD_PROMPT + " Now, before compressing")
    assert ROUTING_PROMPT.endswith("answer exactly 'Yes' or 'No': is this segment relevant to the Query?")


def test_decoder_prompt_text_matches_chatml_layout(tiny_tokenizer):
    turns = [Turn("user", "<video>\nWhat colour is the circle?"), Turn("assistant", "Red")]
    ids, labels = encode_decoder_prompt(tiny_tokenizer, turns, has_visual=True)
    assert (ids == VISUAL_PLACEHOLDER_ID).sum() == 1
    pos = int((ids == VISUAL_PLACEHOLDER_ID).nonzero())
    before = tiny_tokenizer.decode(ids[:pos])
    after = tiny_tokenizer.decode(ids[pos + 1 :])
    assert before == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert after == "\nWhat colour is the circle?<|im_end|>\n<|im_start|>assistant\nRed<|im_end|>\n"
    supervised = ids[labels != IGNORE_INDEX]
    assert tiny_tokenizer.decode(supervised) == "Red<|im_end|>"
    assert (labels[labels != IGNORE_INDEX] == ids[labels != IGNORE_INDEX]).all()


def test_multi_turn_supervises_every_assistant_turn(tiny_tokenizer):
    turns = [
        Turn("user", "<image> one?"),
        Turn("assistant", "A"),
        Turn("user", "two?"),
        Turn("assistant", "B"),
    ]
    ids, labels = encode_decoder_prompt(tiny_tokenizer, turns, has_visual=True)
    assert tiny_tokenizer.decode(ids[labels != IGNORE_INDEX]) == "A<|im_end|>B<|im_end|>"


def test_generation_prompt_and_text_only(tiny_tokenizer):
    ids, labels = encode_decoder_prompt(
        tiny_tokenizer, [Turn("user", "Hi")], has_visual=False, add_generation_prompt=True
    )
    assert (ids == VISUAL_PLACEHOLDER_ID).sum() == 0
    assert tiny_tokenizer.decode(ids).endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert (labels == IGNORE_INDEX).all()


def test_bad_conversations_are_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="empty conversation"):
        encode_decoder_prompt(tiny_tokenizer, [], has_visual=True)
    with pytest.raises(ValueError, match="start with a user turn"):
        encode_decoder_prompt(tiny_tokenizer, [Turn("assistant", "x")], has_visual=True)
    with pytest.raises(ValueError, match="unknown turn role 'gpt'"):
        encode_decoder_prompt(tiny_tokenizer, [Turn("user", "x"), Turn("gpt", "y")], has_visual=True)


def test_compressor_query_single_and_multi_turn():
    assert (
        compressor_query([Turn("user", "<video>\nWhat happens?"), Turn("assistant", "x")]) == "What happens?"
    )
    turns = [Turn("user", f"q{i}") if i % 2 == 0 else Turn("assistant", "a") for i in range(40)]
    query = compressor_query(turns)
    lines = query.split("\n")
    assert len(lines) == 16  # at most 16 user turns
    assert lines[0] == "Context turn 1: q0" and lines[1] == "Context turn 2: q2"
    with pytest.raises(ValueError, match="non-empty user turn"):
        compressor_query([Turn("user", "<video>")])


def test_time_tag_released_form():
    assert format_time_tag(2.0) == "<2.0 seconds>"
    assert format_time_tag(13.25) == "<13.2 seconds>"  # Python's round-half-even on .25
    assert format_time_tag(3, "<t={t:.1f}s>") == "<t=3.0s>"


def test_tiny_tokenizer_has_qwen_special_tokens_and_single_yes_no(tiny_tokenizer):
    for token in [
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|video_pad|>",
        "<|image_pad|>",
        "<|endoftext|>",
    ]:
        ids = tiny_tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tiny_tokenizer.convert_ids_to_tokens(ids[0]) == token
    for word in ["Yes", "No"]:
        assert len(tiny_tokenizer(word, add_special_tokens=False)["input_ids"]) == 1


def test_a_family_tokenizer_without_its_special_tokens_is_refused_in_one_line(tiny_tokenizer, tmp_path):
    from tempo_kit.compressors.sequence import check_placeholder, special_token_ids
    from tempo_kit.errors import ConfigError

    ids = special_token_ids(tiny_tokenizer, ("<|im_start|>", "<|video_pad|>"), "Qwen-VL", tmp_path)
    assert ids == {name: tiny_tokenizer.convert_tokens_to_ids(name) for name in ids}
    with pytest.raises(ConfigError, match=r"tokenizer of '.*' lacks SmolVLM's <global-img>, <image> token\(s\)"):
        special_token_ids(tiny_tokenizer, ("<|im_start|>", "<global-img>", "<image>"), "SmolVLM", tmp_path)
    check_placeholder(ids, "<|video_pad|>", ids["<|video_pad|>"], tmp_path)
    with pytest.raises(ConfigError, match=r"disagree on <\|video_pad\|> \(\d+ vs 7\)"):
        check_placeholder(ids, "<|video_pad|>", 7, tmp_path)
