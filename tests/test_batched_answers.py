"""Several questions answered together (`inference.batched`): the same answers as one by one, fewer
compressor forwards, per-row stopping and streaming, multi-turn history as decoder chat turns."""

from __future__ import annotations

import json

import pytest
import torch

from tempo_kit.inference.batched import Ask, answer_batch, compress_together, decoder_batch
from tempo_kit.model.compression import segment_batch_size
from tempo_kit.model.prompts import Turn
from tempo_kit.serving.streaming import PieceStreamer

#: questions of different lengths, so suffix rows and decoder prompts need padding
QUESTIONS = ["Where?", "What moves across the frame in the middle of the video?", "Which colour is the square?"]
SETTINGS = {"budget": 48, "max_new_tokens": 6}


@pytest.fixture(scope="module")
def pipeline(letter_model):
    from tempo_kit.inference.api import TempoPipeline

    return TempoPipeline.from_pretrained(letter_model)


@pytest.fixture(scope="module")
def videos(tiny_needle_benchmark):
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()]
    return [tiny_needle_benchmark.parent / row["video"] for row in rows[:2]]


def svlm_forwards(pipeline):
    """A counter of the SVLM's forward passes (a forward hook on the real module)."""
    calls = []
    handle = pipeline.model.compressor.svlm.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def jobs(pipeline, videos):
    """(video index, question) of five asks: both videos, a repeat, and one with an earlier turn."""
    history = (Turn("user", "Is there a circle?"), Turn("assistant", "Yes, a red one."))
    return [
        (0, pipeline.question(QUESTIONS[0], **SETTINGS)),
        (1, pipeline.question(QUESTIONS[1], **SETTINGS)),
        (0, pipeline.question(QUESTIONS[2], **SETTINGS)),
        (1, pipeline.question(QUESTIONS[0], **SETTINGS)),
        (0, pipeline.question(QUESTIONS[1], history=history, **SETTINGS)),
    ]


@pytest.mark.slow
def test_a_batch_answers_as_one_by_one_in_fewer_compressor_forwards(pipeline, videos):
    asked = jobs(pipeline, videos)
    calls, handle = svlm_forwards(pipeline)
    try:
        alone_sessions = [pipeline.open(v) for v in videos]
        singles = [alone_sessions[v].ask(question=q) for v, q in asked]
        alone = len(calls)
        calls.clear()
        together_sessions = [pipeline.open(v) for v in videos]
        batched = answer_batch(pipeline, [Ask(together_sessions[v], q) for v, q in asked])
        together = len(calls)
    finally:
        handle.remove()
    for single, result in zip(singles, batched):
        assert not isinstance(result, Exception), result
        assert result.answer == single.answer and result.answer
        assert result.allocation.counts.tolist() == single.allocation.counts.tolist()
        torch.testing.assert_close(result.allocation.relevance, single.allocation.relevance, rtol=0, atol=1e-5)
        assert (result.svlm_tokens, result.reused) == (single.svlm_tokens, single.reused)
    assert [r.reused for r in batched] == [(), (), ("decode", "prefix"), ("decode", "prefix"), ("decode", "prefix")]
    assert all(s.cached_segments == len(s.segments) == 3 for s in together_sessions)
    # one prefix call per video either way; then alone each question makes one suffix call, while
    # together the 15 rows fill calls of segment_batch_size rows (no call_token_budget here)
    size = segment_batch_size(pipeline.model.compressor)
    assert alone == 2 + len(asked) and together == 2 + -(-3 * len(asked) // size) < alone


@pytest.mark.slow
def test_each_row_stops_and_streams_on_its_own(pipeline, videos):
    session = pipeline.open(videos[0])
    asked = [pipeline.question(q, **SETTINGS) for q in QUESTIONS[:2]]
    expected = [session.ask(question=q).answer for q in asked]
    pieces: list[list[str]] = [[], []]
    asks = [
        Ask(session, asked[0], streamer=PieceStreamer(pipeline.model.tokenizer, pieces[0].append)),
        Ask(session, asked[1], streamer=PieceStreamer(pipeline.model.tokenizer, pieces[1].append), stop=lambda: True),
    ]
    first, stopped = answer_batch(pipeline, asks)
    assert first.answer == expected[0] and "".join(pieces[0]) == expected[0]
    # the stopped row ends after its first token while the other row runs to its own end
    assert len(pipeline.model.tokenizer(stopped.answer, add_special_tokens=False)["input_ids"]) <= 1
    assert "".join(pieces[1]) == stopped.answer


@pytest.mark.slow
def test_a_refused_setting_fails_its_own_question_only(pipeline, videos):
    session = pipeline.open(videos[0])
    good = pipeline.question(QUESTIONS[0], max_new_tokens=2)
    impossible = pipeline.question(QUESTIONS[0], max_context=8, max_new_tokens=2)  # no room for the video
    fine, refused = answer_batch(pipeline, [Ask(session, good), Ask(session, impossible)])
    assert fine.answer == session.ask(question=good).answer
    assert isinstance(refused, Exception)


def test_history_must_alternate_and_end_with_the_reply(pipeline):
    from tempo_kit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"history\[0\].*Turn\('user', text\)"):
        pipeline.question("Q?", history=[Turn("assistant", "A")])
    with pytest.raises(ConfigError, match="ends with a user turn"):
        pipeline.question("Q?", history=[Turn("user", "first")])
    question = pipeline.question("Q?", history=[Turn("user", "first"), Turn("assistant", "A")])
    assert question.to_dict()["history"] == [{"role": "user", "text": "first"}, {"role": "assistant", "text": "A"}]


def test_history_reaches_the_decoder_as_chat_turns(pipeline):
    from tempo_kit.model import inference_batch
    from tempo_kit.model.prompts import encode_decoder_prompt
    from tempo_kit.types import Segments

    tokenizer = pipeline.model.tokenizer
    turns = [Turn("user", "Is there a circle?"), Turn("assistant", "Yes.")]
    video = Segments(frames=torch.zeros(1, 4, 8, 8, 3, dtype=torch.uint8), frame_times=torch.zeros(1, 4), times=torch.zeros(1))
    batch = inference_batch(tokenizer, [video, video], ["Which colour?", "Where?"], histories=[turns, ()])
    with_turns, _ = encode_decoder_prompt(tokenizer, [*turns, Turn("user", "Which colour?")], has_visual=True,
                                          add_generation_prompt=True)
    alone, _ = encode_decoder_prompt(tokenizer, [Turn("user", "Where?")], has_visual=True, add_generation_prompt=True)
    assert batch.input_ids[0, : len(with_turns)].tolist() == with_turns.tolist()
    assert batch.input_ids[1, : len(alone)].tolist() == alone.tolist() and len(alone) < len(with_turns)


@pytest.mark.slow
def test_each_decoder_row_holds_its_own_question_turns_and_memory(pipeline, videos):
    """The letter model answers the same letters whatever the question's text, so equal answers
    cannot show that rows kept their questions: the decoder's inputs are compared here instead."""
    from tempo_kit.model import inference_batch

    asked = [(v, pipeline.question(q.query, history=q.history, max_frames=8, **SETTINGS))
             for v, q in jobs(pipeline, videos)[2:]]  # video 0, video 1, video 0 with an earlier turn
    sessions = [pipeline.open(v, max_frames=8) for v in videos]
    memories = compress_together(pipeline, [Ask(sessions[v], q) for v, q in asked])
    batch, compressed = decoder_batch(pipeline, [q for _, q in asked], memories)
    first = 0
    for row, ((v, question), memory) in enumerate(zip(asked, memories)):
        alone = inference_batch(pipeline.model.tokenizer, [memory.segments], [question.query], histories=[question.history])
        ids = batch.input_ids[row][batch.attention_mask[row].bool()]
        assert ids.tolist() == alone.input_ids[0].tolist() and batch.queries[row] == question.compressor_query
        single = sessions[v].compress(question)
        count = len(memory.segments)
        torch.testing.assert_close(compressed.memory[first : first + count], single.compressed.memory, rtol=0, atol=1e-5)
        first += count
    assert compressed.num_segments == [len(m.segments) for m in memories]
