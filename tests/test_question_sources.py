"""Every memory source gives the same memory, relevance, allocation and answer under every setting.

The reference is computed by hand from the low-level parts (``load_video``, ``make_segments``,
``compress_samples``, ``generate``) with the settings written out literally, so a source that drops
or re-decides any one setting differs from it. Each non-default setting is first shown to change
the reference, else the test could not see it dropped.
"""

from __future__ import annotations

import pytest
import torch

from tempo_kit.compressors.prompts import QWEN_DEFAULT_PROMPT, STANDARD_PROMPT
from tempo_kit.inference.sources import MemorySource

QUERY = "Which letter? (A) one (B) two (C) three (D) four"
OTHER = "What number is shown first?"
#: name: (answer() keywords, the reference's sampling fields, memory prompt, relevance prompt, base prior)
CASES = {
    "defaults": ({}, {}, None, None, False),
    "relevance_prompt": ({"relevance_prompt": "standard"}, {}, STANDARD_PROMPT, STANDARD_PROMPT, False),
    "base_relevance_prompt": (
        {"relevance": "base", "relevance_prompt": "qwen_default"}, {}, None, QWEN_DEFAULT_PROMPT, True
    ),
    "time_base": ({"time_base": "container"}, {"time_base": "container"}, None, None, False),
    "geometry": ({"preprocessing": "qwen3_vl"}, {"preprocessing": "qwen3_vl"}, None, None, False),
    "call_token_budget": ({}, {}, None, None, False),  # the compressor's budget, set below
}
SOURCES = ("serial", "streamed", "prefix_cached")


class Recording(MemorySource):
    """A source that keeps the memory the source it wraps gave (to compare memories)."""

    def __init__(self, source: MemorySource) -> None:
        self.source, self.memory = source, None

    def compress(self, question, *, progress=False, rescore=None):
        self.memory = self.source.compress(question, progress=progress, rescore=rescore)
        return self.memory


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """25 frames at 3 fps: 17 sampled frames whose container times are not multiples of 1/real_fps."""
    from tempo_kit.data.synthetic import write_counter_video

    return write_counter_video(tmp_path_factory.mktemp("sources") / "counter.mp4", 25, 3.0, size=(64, 96))


@pytest.fixture(scope="module")
def pipe(letter_model, tiny_checkpoints):
    from tempo_kit.inference.api import TempoPipeline, load_base_compressor

    model = TempoPipeline.from_pretrained(letter_model, compressor={"segment_batch_size": 2}).model
    return TempoPipeline(model, load_base_compressor(tiny_checkpoints["svlm"]))


def one_segment_budget(pipe, video) -> int:
    """A call-token budget that holds one of this video's segments: calls of 1, 1 and 1."""
    from tempo_kit.inference.sources import decode_video
    from tempo_kit.video.reading import Sampling

    segments = decode_video(video, None, None, Sampling.inference(preprocessing="released")).segments
    return max(pipe.model.compressor.segment_tokens(segments, QUERY))


def by_hand(pipe, video, case):
    """The reference answer from the low-level parts, every setting written out."""
    from tempo_kit.model import inference_batch
    from tempo_kit.model.compression import compress_samples
    from tempo_kit.types import CompressorOutput
    from tempo_kit.video import load_video, make_segments

    _, reading, memory_prompt, relevance_prompt, base = CASES[case]
    arguments = {
        "fps": 2.0, "min_frames": 4, "max_frames": 1024, "preprocessing": "released", "resize": "pil",
        "max_long_edge": 512, "backend": "decord", **reading,
    }
    clip = load_video(video, **arguments)
    segments = make_segments(clip, 8, time_base=reading.get("time_base", "released"))
    compressed = compress_samples(pipe.model.compressor, [segments], [QUERY], memory_prompt)
    if base:
        prior = compress_samples(pipe.base_compressor, [segments], [QUERY], relevance_prompt)
        compressed = CompressorOutput(compressed.memory, prior.relevance, compressed.num_segments)
    out = pipe.model.generate(
        inference_batch(pipe.model.tokenizer, [segments], [QUERY]), compressed=compressed, max_new_tokens=2
    )
    return compressed, out


def answered(pipe, video, source_name, options):
    """The answer through one memory source, and the memory that source gave."""
    question = pipe.question(QUERY, max_new_tokens=2, **options)
    if source_name == "prefix_cached":
        session = pipe.open(video, sampling=question.sampling)
        session.ask(OTHER, max_new_tokens=1, **{k: v for k, v in options.items() if "relevance" in k})
        source = Recording(session)  # the second question reads the cached prefixes
    else:
        source = Recording(pipe.source(video, overlap=source_name == "streamed"))
    return pipe.answer(question=question, source=source), source.memory


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_source_honours_every_setting(pipe, video, case):
    compressor = pipe.model.compressor
    if case == "call_token_budget":
        compressor.call_token_budget = one_segment_budget(pipe, video)
    try:
        reference, out = by_hand(pipe, video, case)
        if case not in ("defaults", "call_token_budget"):  # the setting matters, so a drop shows
            default, _ = by_hand(pipe, video, "defaults")
            same_memory = default.memory.shape == reference.memory.shape and torch.allclose(
                default.memory, reference.memory, atol=1e-5
            )
            assert not (same_memory and torch.allclose(default.relevance, reference.relevance, atol=1e-5))
        for source_name in SOURCES:
            result, memory = answered(pipe, video, source_name, CASES[case][0])
            assert memory.compressed.memory.shape == reference.memory.shape, source_name
            assert torch.allclose(memory.compressed.memory, reference.memory, atol=1e-4), source_name
            assert torch.allclose(memory.compressed.relevance, reference.relevance, atol=1e-5), source_name
            allocation = out.allocations[0]
            assert result.allocation.counts.tolist() == allocation.counts.tolist(), source_name
            assert torch.equal(result.allocation.times, allocation.times), source_name
            assert result.answer == out.texts[0], source_name
            if source_name == "streamed":  # chunks of 2 whole calls of the plan: [2, 1] or [1, 1, 1]
                assert memory.settings["overlap_chunks"] == ([2, 1] if case == "call_token_budget" else [3])
    finally:
        compressor.call_token_budget = None
