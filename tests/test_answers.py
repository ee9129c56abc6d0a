"""Answer extraction over a table of reply styles seen from real video-LLMs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.evaluation.answers import extract_choice, valid_letters

#: (reply, expected letter) with four options A–D.
REPLIES = [
    # bare letters, any wrapping
    ("D", "D"),
    ("d", "D"),
    ("(D)", "D"),
    ("(d)", "D"),
    ("D.", "D"),
    ("[C]", "C"),
    ("  B  \n", "B"),
    ("'A'", "A"),
    # letter followed by the option text
    ("D. The red circle", "D"),
    ("(B) a blue square on the left", "B"),
    ("C) green triangle", "C"),
    ("A: the man", "A"),
    ("A. A person walks in", "A"),
    # explicit verdicts
    ("The answer is D", "D"),
    ("The answer is D.", "D"),
    ("The best answer is B.", "B"),
    ("The correct answer is (C).", "C"),
    ("Answer: A", "A"),
    ("Answer: (A)", "A"),
    ("**Answer:** (D)", "D"),
    ("Answer: b", "B"),
    ("Best option: (B)", "B"),
    ("The correct option is C.", "C"),
    ("Option B is correct.", "B"),
    ("The answer is option C", "C"),
    ("answer: C) The dog runs away", "C"),
    ("\\boxed{C}", "C"),
    ("<answer>B</answer>", "B"),
    # reasoning: the final verdict wins, not letters mentioned on the way
    ("Based on the video, the answer is B because A is wrong.", "B"),
    ("A is unlikely and C contradicts the scene. Therefore, the answer is D.", "D"),
    ("The answer is C, not option A", "C"),
    ("<think>Maybe A? No.</think>C", "C"),
    ("<think>Option A.</think>\nThe answer is B", "B"),
    # a lone standalone letter in a sentence
    ("I think B", "B"),
    ("It is D", "D"),
    ("A is correct.", "A"),
    ("From the frames around 12 seconds, B matches.", "B"),
    # no single choice: None, never a guess
    ("", None),
    ("I'm not sure.", None),
    ("None of the above", None),
    ("A man walks into the room.", None),
    ("The video shows a red circle at the top.", None),
    ("I think B or C", None),
    ("Both A and C are plausible.", None),
    ("A is wrong and so is C", None),
    ("E", None),
    ("(E) the purple star", None),
    ("The answer is F", None),
    ("I", None),
]


@pytest.mark.parametrize(("reply", "expected"), REPLIES)
def test_extract_choice_table(reply, expected):
    assert extract_choice(reply, 4) == expected


def test_letters_beyond_options_are_refused_but_valid_with_more_options():
    assert extract_choice("(E)", 4) is None
    assert extract_choice("(E)", 5) == "E"
    assert extract_choice("The answer is J.", 10) == "J"


def test_option_text_is_recognised_when_options_are_given():
    options = ["blue square", "red circle", "green star", "red"]
    assert extract_choice("The red circle appears first.", 4, options) == "B"
    assert extract_choice("blue square", 4, options) == "A"
    # without the options there is nothing to go on
    assert extract_choice("The red circle appears first.", 4) is None
    # two unrelated options quoted: ambiguous
    assert extract_choice("blue square then green star", 4, options) is None


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="num_options"):
        extract_choice("A", 0)
    with pytest.raises(ValueError, match="3 option texts"):
        extract_choice("A", 4, ["x", "y", "z"])
    assert valid_letters(5) == "ABCDE"


@given(
    num_options=st.integers(min_value=1, max_value=26),
    index=st.integers(min_value=0, max_value=25),
    style=st.sampled_from(["{}", "({})", "{}.", "The answer is {}.", "Answer: ({})", "{}) option text"]),
)
def test_every_valid_letter_in_every_style_roundtrips(num_options, index, style):
    letter = valid_letters(26)[index]
    expected = letter if index < num_options else None
    assert extract_choice(style.format(letter), num_options) == expected
