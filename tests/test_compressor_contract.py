"""The contract every registered compressor keeps (the kit's own and plugins', found through the
registry): output shapes and dtype, relevance present exactly when declared, results independent
of how the kit cuts a video into calls, deterministic, buildable without weights on the meta
device, and saved then rebuilt unchanged.

A compressor is built from the tiny checkpoint of its family (``tempo_kit.tiny.svlm_families``)
when it reads one, from the tiny Qwen3-VL when it only takes a ``pretrained`` folder, and from its
defaults otherwise, with ``k_max`` = 4 and float32 where it takes them.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from tempo_kit.compressors.memory import MemoryTokenCompressor
from tempo_kit.errors import ConfigError
from tempo_kit.model.compression import compress_samples
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import Segments

K_MAX = 4
#: the kit's compressors and installed plugins; not the throwaway ones other test modules register
NAMES = [name for name in COMPRESSORS.list() if not COMPRESSORS.get(name).__module__.startswith("test_")]
QUERIES = ["Where is the red ball?", "a much longer question about the colour of the shape?"]


def samples() -> list[Segments]:
    """A video of three windows (the last one short) and an image: rows of different lengths."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 4, 56, 84, 3), dtype=torch.uint8, generator=g)
    times = torch.arange(12, dtype=torch.float64).view(3, 4) / 2
    video = Segments(frames, times, times.mean(1), kind="video", lengths=torch.tensor([4, 4, 3]))
    image = torch.randint(0, 256, (1, 1, 56, 56, 3), dtype=torch.uint8, generator=g)
    return [video, Segments(image, torch.zeros(1, 1), torch.zeros(1), kind="image")]


def spec(name: str, tiny_svlm) -> dict:
    builder = COMPRESSORS.get(name)
    accepted = inspect.signature(builder).parameters
    values = {"k_max": K_MAX, "dtype": "float32"}
    if "pretrained" in accepted:
        family = getattr(builder, "family", None)
        values["pretrained"] = str(tiny_svlm(family.name if family else "qwen3_vl"))
    return {"name": name, **{k: v for k, v in values.items() if k in accepted}}


@pytest.fixture(scope="module")
def built(tiny_svlm):
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = COMPRESSORS.build(spec(name, tiny_svlm)).eval()
        return cache[name]

    return get


def run(compressor, **settings):
    saved = {key: getattr(compressor, key) for key in settings}
    calls = []
    try:
        for key, value in settings.items():
            setattr(compressor, key, value)
        with torch.no_grad():
            return compress_samples(compressor, samples(), QUERIES, on_chunk=calls.append), calls
    finally:
        for key, value in saved.items():
            setattr(compressor, key, value)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtype_and_declared_relevance(name, built):
    compressor = built(name)
    out, _ = run(compressor)
    dtype = next(compressor.parameters()).dtype
    assert out.num_segments == [3, 1]
    assert out.memory.shape == (4, compressor.k_max, compressor.hidden_size) and out.memory.dtype == dtype
    if compressor.scores_relevance:
        assert out.relevance.shape == (4,) and out.relevance.dtype == torch.float32
        assert ((out.relevance > 0) & (out.relevance < 1)).all()
    else:
        assert out.relevance is None


@pytest.mark.parametrize("name", NAMES)
def test_calls_cut_by_segments_or_tokens_change_nothing_and_repeat_exactly(name, built):
    compressor = built(name)
    whole, calls = run(compressor, segment_batch_size=8)
    again, _ = run(compressor, segment_batch_size=8)
    assert calls == [4] and torch.equal(whole.memory, again.memory)
    cuts = [run(compressor, segment_batch_size=1)]
    try:
        counts = [n for sample, query in zip(samples(), QUERIES) for n in compressor.segment_tokens(sample, query)]
    except ConfigError:  # a compressor without token counts takes no token budget
        counts = None
    if counts is not None:  # a budget that holds the largest segment alone, so calls must be cut
        budget = max(compressor.call_tokens([n]) for n in counts)
        cuts.append(run(compressor, segment_batch_size=8, call_token_budget=budget))
    for out, cut_calls in cuts:
        assert len(cut_calls) > 1
        torch.testing.assert_close(out.memory, whole.memory, atol=1e-5, rtol=1e-4)
        if whole.relevance is not None:
            torch.testing.assert_close(out.relevance, whole.relevance, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_builds_without_weights_on_the_meta_device(name, tiny_svlm):
    with torch.device("meta"):
        compressor = COMPRESSORS.build(spec(name, tiny_svlm))
    assert all(t.is_meta for t in (*compressor.parameters(), *compressor.buffers()))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_saved_and_rebuilt_it_is_the_same_compressor(name, built, tmp_path):
    compressor = built(name)
    if not hasattr(compressor, "save_pretrained"):
        pytest.skip(f"{name} is stored by its state dict alone (the model folder holds it)")
    compressor.save_pretrained(tmp_path)
    again = COMPRESSORS.build({**spec(name, lambda _: None), "pretrained": str(tmp_path)}).eval()
    state, restored = compressor.state_dict(), again.state_dict()
    assert state.keys() == restored.keys() and all(torch.equal(state[k], restored[k]) for k in state)
    first, second = run(compressor)[0], run(again)[0]
    assert torch.equal(first.memory, second.memory)


def test_memory_token_families_are_all_covered_by_a_tiny_writer():
    from tempo_kit.tiny.svlm_families import SVLM_WRITERS

    families = {COMPRESSORS.get(n).family.name for n in NAMES
                if isinstance(COMPRESSORS.get(n), type) and issubclass(COMPRESSORS.get(n), MemoryTokenCompressor)}  # fmt: skip
    assert families <= set(SVLM_WRITERS)
