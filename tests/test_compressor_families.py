"""Every memory-token family in a whole Tempo model: one training step moves its memory tokens and
a question through ``TempoPipeline`` is answered under an allocation (tiny Qwen3 decoder); a
``pretrained`` of the wrong architecture names who reads it or the adapter to write."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.errors import CheckpointError
from tempo_kit.model import TempoModel
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.registry import COMPRESSORS
from tempo_kit.types import IGNORE_INDEX, Segments, TempoBatch

#: the families beyond qwen3_vl (whose own tests cover it)
FAMILIES = ["qwen2_5_vl", "smolvlm", "internvl"]


def clip(seed=0) -> Segments:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (3, 4, 56, 84, 3), dtype=torch.uint8, generator=g)
    times = torch.arange(12, dtype=torch.float64).view(3, 4) / 2
    return Segments(frames, times, times.mean(1), kind="video")


def one_sample_batch(tokenizer) -> TempoBatch:
    ids, labels = encode_decoder_prompt(
        tokenizer, [Turn("user", "Which colour?"), Turn("assistant", "Red")], has_visual=True
    )
    ids = torch.as_tensor(ids)[None]
    return TempoBatch([clip()], ["Which colour?"], ids, torch.as_tensor(labels)[None], torch.ones_like(ids), ids=["s0"])


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_trains_one_step_and_answers_with_an_allocation(family, tiny_svlm, tiny_checkpoints):
    from tempo_kit.inference.api import TempoPipeline

    torch.manual_seed(0)
    model = TempoModel.from_config({
        "compressor": {"name": family, "pretrained": str(tiny_svlm(family)), "k_max": 4, "dtype": "float32"},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
        "budget": 6,
    })  # fmt: skip
    model.train()
    before = model.compressor.memory_tokens.detach().clone()
    optimizer = torch.optim.SGD([model.compressor.memory_tokens], lr=1.0)
    batch = one_sample_batch(model.tokenizer)
    assert (batch.labels != IGNORE_INDEX).any()
    model(batch).loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.compressor.memory_tokens)
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (12, 56, 84, 3), dtype=torch.uint8, generator=g)
    result = TempoPipeline(model).answer(frames=frames, query="Which colour?", budget=6, max_new_tokens=2)
    counts = result.allocation.counts
    assert isinstance(result.answer, str) and len(counts) == len(result.allocation.relevance) > 1
    assert sum(counts) <= 6 and all(0 <= c <= 4 for c in counts)


def test_an_unsupported_architecture_names_the_families_and_the_adapter_to_write(tiny_checkpoints):
    with pytest.raises(CheckpointError) as caught:
        COMPRESSORS.build({"name": "qwen2_5_vl", "pretrained": str(tiny_checkpoints["llm"])})
    message = str(caught.value)
    assert "is a 'qwen3' model, not 'qwen2_5_vl'" in message and "\n" not in message
    assert "qwen3_vl: qwen3_vl" in message and "qwen2_5_vl: qwen2_5_vl" in message
    assert "one adapter file (a FamilyAdapter subclass, like tempo_kit/compressors/qwen2_5_vl.py" in message


def test_another_supported_family_names_the_compressor_that_reads_it(tiny_checkpoints):
    with pytest.raises(CheckpointError, match=r"is a 'qwen3_vl' model, not 'qwen2_5_vl'.*model.compressor.name=qwen3_vl"):
        COMPRESSORS.build({"name": "qwen2_5_vl", "pretrained": str(tiny_checkpoints["svlm"])})


def test_a_family_without_a_prefix_cache_is_refused_one_at_build(tiny_checkpoints):
    from tempo_kit.compressors.family import FamilyAdapter
    from tempo_kit.compressors.memory import MemoryTokenCompressor
    from tempo_kit.errors import ConfigError

    class NoCache(FamilyAdapter):
        name, model_types = "no_cache", ("qwen3_vl",)

    class NoCacheCompressor(MemoryTokenCompressor):
        family = NoCache

    with pytest.raises(ConfigError, match=r"'no_cache' cannot cache a question-independent prefix.*require_prefix_cache"):
        NoCacheCompressor(str(tiny_checkpoints["svlm"]), require_prefix_cache=True)
    with pytest.raises(ConfigError, match=r"'no_cache' has no setting 'min_pixel'"):
        NoCacheCompressor(str(tiny_checkpoints["svlm"]), min_pixel=4)


@pytest.mark.parametrize("family", ["qwen3_vl", *FAMILIES])
def test_each_family_reads_frames_at_its_own_geometry_by_default(family):
    """Qwen3-VL defaults to the released chain (its own); the others to their processor's geometry,
    and refuse the released chain and Qwen3-VL's mode, which would hand them Qwen3-VL's frames."""
    from tempo_kit.errors import ConfigError
    from tempo_kit.model.config import TempoConfig

    parts = {"compressor": {"name": family, "pretrained": "x"}, "decoder": {"name": "hf_causal_lm", "pretrained": "y"}}
    expected = "released" if family == "qwen3_vl" else "processor"
    assert TempoConfig(**parts).preprocessing == expected
    assert TempoConfig(**parts, preprocessing="processor").preprocessing == "processor"
    for other in ("released", "qwen3_vl"):
        if family == "qwen3_vl":
            assert TempoConfig(**parts, preprocessing=other).preprocessing == other
        else:
            with pytest.raises(ConfigError, match=rf"not a frame geometry compressor '{family}' takes"):
                TempoConfig(**parts, preprocessing=other)
