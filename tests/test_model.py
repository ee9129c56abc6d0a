"""TempoModel end to end on a tiny Qwen3 LLM: training forward/backward, generation under a budget,
mixed video/image/text batches, micro-batched compression, kit-format save/load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tempo_kit.allocators import Allocator
from tempo_kit.compressors import Compressor
from tempo_kit.errors import CheckpointError, ConfigError, TempoKitError
from tempo_kit.model import TempoModel, inference_batch
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.registry import ALLOCATORS, COMPRESSORS
from tempo_kit.types import IGNORE_INDEX, CompressorOutput, Segments, TempoBatch

K_MAX = 6


@COMPRESSORS.register("test_conv_pool", override=True)
class ConvPoolCompressor(Compressor):
    """A small query-aware compressor: conv over the window's mean frame, pooled to ``k_max`` rows,
    plus learnable memory tokens; relevance is a sigmoid of memory · bag-of-characters(query)."""

    def __init__(self, k_max: int = K_MAX, hidden_size: int = 24) -> None:
        super().__init__()
        self.k_max, self.hidden_size = k_max, hidden_size
        self.conv = nn.Conv2d(3, hidden_size, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((k_max, 1))
        self.memory_tokens = nn.Parameter(torch.randn(k_max, hidden_size) * 0.5)
        self.query_embed = nn.EmbeddingBag(128, hidden_size)

    def forward(self, segments, queries):
        memories, relevances = [], []
        for sample, query in zip(segments, queries):
            x = sample.frames.float().div(255).mean(1).permute(0, 3, 1, 2)
            tokens = self.pool(self.conv(x)).squeeze(-1).transpose(1, 2) + self.memory_tokens
            q = self.query_embed(torch.tensor([[ord(c) % 128 for c in query]]))
            memories.append(tokens)
            relevances.append(torch.sigmoid((tokens.mean(1) * q).sum(-1)).float())
        return CompressorOutput(torch.cat(memories), torch.cat(relevances), [len(s) for s in segments])


@ALLOCATORS.register("test_overspend", override=True)
class Overspend(Allocator):
    """Breaks the contract on purpose: every segment keeps k_max whatever the budget."""

    def forward(self, relevance, k_max, budget, k_min=0, *, num_segments=None):
        return torch.full((len(relevance),), k_max, dtype=torch.long)


def segments(num: int, kind: str = "video", seed: int = 0, window: int = 2) -> Segments:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num, window, 16, 16, 3), generator=g, dtype=torch.uint8)
    frame_times = (torch.arange(num * window, dtype=torch.float) / 2).reshape(num, window)
    times = (torch.arange(num, dtype=torch.float) * window + window / 2) / 2
    return Segments(frames, frame_times, times, kind=kind)


def train_batch(tokenizer, samples) -> TempoBatch:
    """samples: (Segments, question, answer) → right-padded TempoBatch with assistant-only labels."""
    encoded = [
        encode_decoder_prompt(tokenizer, [Turn("user", q), Turn("assistant", a)], has_visual=s.kind != "text")
        for s, q, a in samples
    ]
    length = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(samples), length), tokenizer.pad_token_id)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    mask = torch.zeros_like(input_ids)
    for b, (ids, lab) in enumerate(encoded):
        input_ids[b, : len(ids)], labels[b, : len(ids)], mask[b, : len(ids)] = ids, lab, 1
    return TempoBatch(
        segments=[s for s, _, _ in samples],
        queries=[q for _, q, _ in samples],
        input_ids=input_ids,
        labels=labels,
        attention_mask=mask,
        ids=[f"s{i}" for i in range(len(samples))],
    )


def config(llm_path, **overrides):
    cfg = {
        "compressor": {"name": "test_conv_pool", "k_max": K_MAX},
        "projector": {"name": "linear"},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(llm_path)},
        "allocator": {"name": "ata"},
        "budget": 10,
        "k_min": 1,
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture()
def model(tiny_checkpoints):
    torch.manual_seed(0)
    return TempoModel.from_config(config(tiny_checkpoints["llm"]))


@pytest.fixture()
def mixed_batch(model):
    return train_batch(
        model.tokenizer,
        [
            (segments(4, seed=1), "What colour is the circle?", "Red"),
            (segments(1, kind="image", seed=2, window=1), "What shape is shown?", "A square"),
            (segments(1, kind="text", seed=3, window=1), "Count to three", "one two three"),
            (segments(2, seed=4), "When does it move?", "At 2.0 seconds"),
        ],
    )


def test_from_config_wires_components_and_widths(model):
    assert model.projector.proj.in_features == 24 and model.projector.proj.out_features == 48
    assert type(model.allocator).__name__ == "ATAAllocator"
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert names == {"compressor", "projector", "decoder"}
    keys = set(model.state_dict())
    assert {
        "decoder.model.model.embed_tokens.weight",
        "decoder.model.lm_head.weight",
        "projector.proj.bias",
    } <= keys


def test_training_forward_backward_reaches_every_trainable_part(model, mixed_batch):
    model.train()
    out = model(mixed_batch)
    assert torch.isfinite(out.loss)
    # training keeps all k_max tokens per segment; the text-only sample inserts none
    assert out.visual_tokens == [4 * K_MAX, K_MAX, 0, 2 * K_MAX]
    assert out.counts[2] is None and out.counts[0].tolist() == [K_MAX] * 4
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    for name in (
        "compressor.memory_tokens",
        "compressor.conv.weight",
        "projector.proj.weight",
        "projector.proj.bias",
        "decoder.model.model.layers.0.mlp.up_proj.weight",
        "decoder.model.model.embed_tokens.weight",
    ):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name


def test_labels_supervise_only_assistant_tokens(model, mixed_batch):
    out = model(mixed_batch)
    tokenizer = model.tokenizer
    texts = []
    for b in range(len(mixed_batch)):
        ids = mixed_batch.input_ids[b][mixed_batch.labels[b] != IGNORE_INDEX]
        texts.append(tokenizer.decode(ids))
        assert int((out.labels[b] != IGNORE_INDEX).sum()) == len(ids)
    assert texts == [
        "Red<|im_end|>",
        "A square<|im_end|>",
        "one two three<|im_end|>",
        "At 2.0 seconds<|im_end|>",
    ]
    lengths = out.attention_mask.sum(1).tolist()
    for b, stats in enumerate(out.stats):
        assert lengths[b] == stats.total


def test_frozen_parts_get_no_gradient(model, mixed_batch):
    model.train()
    model.decoder.requires_grad_(False)
    model.compressor.requires_grad_(False)
    model(mixed_batch).loss.backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.compressor.parameters())
    assert model.projector.proj.weight.grad.abs().sum() > 0


def test_text_only_batch_still_touches_compressor_and_projector(model):
    batch = train_batch(model.tokenizer, [(segments(1, kind="text", window=1), "Say hi", "hi")])
    model.train()
    out = model(batch)
    out.loss.backward()
    # gradients exist (DDP sees every parameter) and are exactly zero: the memory is not in the input
    for p in list(model.compressor.parameters()) + list(model.projector.parameters()):
        assert p.grad is not None and p.grad.abs().sum() == 0


def test_generate_respects_budget_and_returns_allocations(model):
    model.eval()
    batch = inference_batch(
        model.tokenizer,
        [segments(5, seed=1), segments(1, kind="text", window=1), segments(3, seed=2)],
        ["Where is the red circle?", "Hello?", "What happens first?"],
    )
    out = model.generate(batch, max_new_tokens=3)
    assert len(out.texts) == 3 and all(isinstance(t, str) for t in out.texts)
    assert out.token_ids.shape[0] == 3 and out.token_ids.shape[1] <= 3
    first, text, last = out.allocations
    assert text is None
    for allocation, num in ((first, 5), (last, 3)):
        assert allocation.counts.shape == (num,) and allocation.total <= 10
        assert allocation.budget == 10 and allocation.k_min == 1 and allocation.k_max == K_MAX
        assert allocation.relevance.shape == (num,)
    assert out.stats[0].visual == first.total and out.stats[1].visual == 0
    # per-call overrides: bigger budget, another allocator, another reduction
    wide = model.generate(batch, budget=100, allocator="uniform", reduction="tail", k_min=2, max_new_tokens=1)
    assert wide.allocations[0].counts.tolist() == [K_MAX] * 5
    assert wide.allocations[0].k_min == 2 and wide.allocations[0].budget == 100
    # a budget that is no token count is refused: 0 would answer from the prompt alone, True is no number
    for bad in (0, True, 2.5):
        with pytest.raises(ConfigError, match=rf"budget={bad!r} must be an integer ≥ 1"):
            model.generate(batch, budget=bad, max_new_tokens=1)


@pytest.fixture(scope="module")
def shared_model(tiny_checkpoints):
    torch.manual_seed(0)
    return TempoModel.from_config(config(tiny_checkpoints["llm"])).eval()


@settings(max_examples=15, deadline=None)
@given(
    num=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    budget=st.integers(1, 40),
    k_min=st.integers(0, K_MAX),
    allocator=st.sampled_from(["ata", "uniform"]),
)
def test_generate_never_exceeds_budget_or_context(shared_model, num, budget, k_min, allocator):
    batch = inference_batch(shared_model.tokenizer, [segments(n, seed=n) for n in num], ["Where?"] * len(num))
    out = shared_model.generate(batch, budget=budget, k_min=k_min, allocator=allocator, max_new_tokens=1)
    for allocation, stats, n in zip(out.allocations, out.stats, num):
        assert allocation.counts.shape == (n,) and allocation.total <= budget
        assert stats.visual == allocation.total and stats.cut == 0
        kept = [float(t) for t, k in zip(allocation.times, allocation.counts) if k > 0]
        tags = sum(len(shared_model.assembler.tag_ids(t)) for t in kept)
        assert stats.tags == tags and stats.total == stats.text + tags + allocation.total


def test_generate_is_greedy_and_matches_single_sample_runs(model):
    model.eval()
    samples = [(segments(3, seed=5), "What is red?"), (segments(1, kind="image", seed=6, window=1), "Shape?")]
    together = model.generate(inference_batch(model.tokenizer, *zip(*samples)), max_new_tokens=4)
    for b, (segs, question) in enumerate(samples):
        alone = model.answer(segs, question, max_new_tokens=4)
        n = alone.token_ids.shape[1]
        assert together.token_ids[b, :n].tolist() == alone.token_ids[0].tolist()
        assert torch.equal(together.allocations[b].counts, alone.allocations[0].counts)


def test_context_cap_at_generation_cuts_visual_tokens(model):
    model.eval()
    batch = inference_batch(model.tokenizer, [segments(5)], ["Where?"])
    text = int(batch.attention_mask.sum()) - 1
    out = model.generate(batch, budget=30, max_context=text + 12, max_new_tokens=1)
    assert out.stats[0].total <= text + 12 and out.stats[0].cut > 0
    assert out.allocations[0].total == out.stats[0].visual


def test_compressor_micro_batches_give_the_same_output(model, mixed_batch, tiny_checkpoints):
    model.eval()
    whole = model.compress(mixed_batch)
    assert model.compressor.segment_batch_size >= 8  # one call above
    model.compressor.segment_batch_size = 3
    calls = []
    hook = model.compressor.register_forward_hook(
        lambda m, args, out: calls.append(sum(len(s) for s in args[0]))
    )
    pieces = model.compress(mixed_batch)
    hook.remove()
    assert max(calls) <= 3 and sum(calls) == 8
    torch.testing.assert_close(whole.memory, pieces.memory)
    torch.testing.assert_close(whole.relevance, pieces.relevance)
    assert pieces.num_segments == [4, 1, 1, 2]


def test_save_and_load_round_trip_without_the_original_checkpoint(tiny_checkpoints, tmp_path, mixed_batch):
    llm = tmp_path / "llm-copy"
    shutil.copytree(tiny_checkpoints["llm"], llm)
    torch.manual_seed(0)
    model = TempoModel.from_config(config(llm, budget=7)).eval()
    with torch.no_grad():
        model.projector.proj.bias.add_(0.25)  # weights that exist nowhere but in this model
    saved = model.save_pretrained(tmp_path / "kit")
    shutil.rmtree(llm)

    document = json.loads((saved / "tempo_config.json").read_text())
    assert document["format"] == "tempo-kit" and document["decoder"]["pretrained"] == "decoder"
    assert document["compressor"] == {"name": "test_conv_pool", "k_max": K_MAX} and document["budget"] == 7
    assert (saved / "compressor" / "state_dict.safetensors").is_file()
    assert (saved / "projector" / "state_dict.safetensors").is_file()
    assert (saved / "decoder" / "config.json").is_file() and (saved / "decoder" / "tokenizer.json").is_file()

    loaded = TempoModel.from_pretrained(saved).eval()
    with torch.no_grad():
        assert torch.equal(model(mixed_batch).loss, loaded(mixed_batch).loss)
    batch = inference_batch(model.tokenizer, [segments(4, seed=9)], ["Where is it?"])
    a, b = model.generate(batch, max_new_tokens=4), loaded.generate(batch, max_new_tokens=4)
    assert torch.equal(a.token_ids, b.token_ids) and torch.equal(
        a.allocations[0].counts, b.allocations[0].counts
    )
    assert TempoModel.from_pretrained(saved, budget=3).config.budget == 3


def test_from_pretrained_overrides_merge_or_replace_component_specs(model, tmp_path):
    saved = model.save_pretrained(tmp_path / "kit")
    loaded = TempoModel.from_pretrained(
        saved, allocator={"name": "uniform"}, decoder={"dtype": "bfloat16"}, k_min=2, max_context=4096
    )
    assert type(loaded.allocator).__name__ == "UniformAllocator"
    assert loaded.config.decoder == {
        "name": "hf_causal_lm",
        "pretrained": str(saved / "decoder"),
        "dtype": "bfloat16",
    }
    assert loaded.decoder.model.dtype == torch.bfloat16
    assert (loaded.config.k_min, loaded.config.max_context, loaded.config.budget) == (2, 4096, 10)


def test_forward_with_allocation_uses_the_budget(model, mixed_batch):
    model.eval()
    with torch.no_grad():
        full = model(mixed_batch)
        budgeted = model(mixed_batch, allocate=True, budget=5, k_min=1)
    assert budgeted.visual_tokens[0] <= 5 < full.visual_tokens[0]
    assert budgeted.allocations[2] is None and budgeted.allocations[0].total == budgeted.visual_tokens[0]
    assert full.allocations is None and torch.isfinite(budgeted.loss)


def test_forward_refuses_bad_settings_before_compressing(model, mixed_batch, tmp_path):
    """The settings are checked first: a compressor that cannot run is never reached."""
    from tempo_kit.model.stored import StoredCompressor

    cannot_compress = TempoModel(StoredCompressor(K_MAX, tmp_path), model.projector, model.decoder, model.allocator)
    for bad in (0, True):
        with pytest.raises(ConfigError, match=rf"budget={bad!r} must be an integer"):
            cannot_compress(mixed_batch, allocate=True, budget=bad)


def test_components_built_by_hand_run_with_default_settings_but_cannot_be_saved(model, tmp_path):
    from tempo_kit.allocators import UniformAllocator

    by_hand = TempoModel(model.compressor, model.projector, model.decoder, UniformAllocator()).eval()
    assert (by_hand.config.budget, by_hand.config.k_min, by_hand.config.max_context) == (8192, 4, 16384)
    by_hand.config.budget = 8
    out = by_hand.answer(segments(3), "Where?", k_min=1, max_new_tokens=1)
    assert out.allocations[0].total <= 8
    with pytest.raises(ConfigError, match="build it with TempoModel.from_config"):
        by_hand.save_pretrained(tmp_path / "kit")


def test_from_pretrained_refuses_weights_that_do_not_fit(model, tmp_path):
    from safetensors.torch import save_model

    saved = model.save_pretrained(tmp_path / "kit")
    projector_file = saved / "projector" / "state_dict.safetensors"
    save_model(nn.Linear(24, 7), str(projector_file))
    with pytest.raises(CheckpointError, match=r"state_dict.safetensors has \d+ bytes but was saved with \d+"):
        TempoModel.from_pretrained(saved)  # the manifest written at save time sees the swap first
    (saved / "manifest.json").unlink()  # a folder without one still has its shapes checked
    with pytest.raises(CheckpointError, match=r"does not fit the projector built from .*Missing key\(s\)"):
        TempoModel.from_pretrained(saved)
    wrapper = nn.Module()
    wrapper.proj = nn.Linear(24, 7)
    save_model(wrapper, str(projector_file))
    with pytest.raises(CheckpointError, match="does not fit the projector .*size mismatch for proj.weight"):
        TempoModel.from_pretrained(saved)
    (saved / "tempo_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="tempo_config.json is not valid JSON"):
        TempoModel.from_pretrained(saved)


def test_from_pretrained_refuses_a_non_kit_directory(tmp_path, tiny_checkpoints):
    with pytest.raises(CheckpointError, match="tempo_config.json is missing"):
        TempoModel.from_pretrained(tiny_checkpoints["llm"])


def test_config_errors_name_the_key(tiny_checkpoints):
    llm = tiny_checkpoints["llm"]
    with pytest.raises(ConfigError, match="unknown key 'bugdet' \\(did you mean 'budget'\\?\\)"):
        TempoModel.from_config({**config(llm), "bugdet": 3})
    with pytest.raises(ConfigError, match="'compressor' is required"):
        TempoModel.from_config({"decoder": {"name": "hf_causal_lm", "pretrained": str(llm)}})
    with pytest.raises(ConfigError, match="projector.in_features=7 contradicts the compressor width 24"):
        TempoModel.from_config(config(llm, projector={"name": "linear", "in_features": 7}))
    with pytest.raises(ConfigError, match="model config: allocator: unknown allocator 'atta'"):
        TempoModel.from_config(config(llm, allocator={"name": "atta"}))
    with pytest.raises(ConfigError, match="time_tag_template"):
        TempoModel.from_config(config(llm, time_tag_template="<seconds>"))
    with pytest.raises(ConfigError, match="k_min=-1 must be an integer"):
        TempoModel.from_config(config(llm, k_min=-1))


def test_allocator_breaking_the_budget_is_caught(model):
    model.eval()
    batch = inference_batch(model.tokenizer, [segments(4)], ["Where?"])
    with pytest.raises(TempoKitError, match="spent 24 tokens over the budget 10"):
        model.generate(batch, allocator="test_overspend", max_new_tokens=1)


# ---------------------------------------------------------------------------------------------
# With the kit's real compressors on the tiny Qwen3-VL checkpoint
# ---------------------------------------------------------------------------------------------
def video(num: int, seed: int = 0, window: int = 4) -> Segments:
    from tempo_kit.video import make_segments

    g = torch.Generator().manual_seed(seed)
    return make_segments(
        torch.randint(0, 256, (num * window, 64, 96, 3), generator=g, dtype=torch.uint8), window
    )


def image(seed: int = 0) -> Segments:
    from tempo_kit.video import make_segments

    g = torch.Generator().manual_seed(seed)
    return make_segments(
        torch.randint(0, 256, (1, 64, 64, 3), generator=g, dtype=torch.uint8), 1, kind="image"
    )


def qwen_config(ckpt, **overrides):
    cfg = {
        "compressor": {"name": "qwen3_vl", "pretrained": str(ckpt["svlm"]), "k_max": 8},
        "decoder": {"name": "hf_causal_lm", "pretrained": str(ckpt["llm"])},
        "budget": 20,
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture()
def tempo(tiny_checkpoints):
    torch.manual_seed(0)
    return TempoModel.from_config(qwen_config(tiny_checkpoints))


@pytest.fixture()
def qwen_batch(tempo):
    from tempo_kit.video import blank_image_segments

    return train_batch(
        tempo.tokenizer,
        [
            (video(3, seed=1), "What colour is the circle?", "Red"),
            (image(seed=2), "What shape is shown?", "A square"),
            (blank_image_segments(), "Count to three", "one two three"),
            (video(2, seed=3), "When does it move?", "At 2.0 seconds"),
        ],
    )


def test_qwen3_vl_training_step_reaches_memory_tokens_svlm_projector_decoder(tempo, qwen_batch):
    tempo.train()
    out = tempo(qwen_batch)
    assert torch.isfinite(out.loss) and out.visual_tokens == [24, 8, 0, 16]
    out.loss.backward()
    grads = dict(tempo.named_parameters())
    for name in (
        "compressor.memory_tokens",
        "compressor.svlm.language_model.layers.0.mlp.up_proj.weight",
        "compressor.svlm.visual.blocks.0.mlp.linear_fc1.weight",
        "projector.proj.weight",
        "decoder.model.model.layers.1.self_attn.q_proj.weight",
    ):
        assert grads[name].grad is not None and grads[name].grad.abs().sum() > 0, name


def test_qwen3_vl_frozen_svlm_gets_no_gradient_but_memory_tokens_do(tempo, qwen_batch):
    tempo.train()
    tempo.compressor.svlm.requires_grad_(False)
    tempo.decoder.requires_grad_(False)
    tempo(qwen_batch).loss.backward()
    assert all(p.grad is None for p in tempo.compressor.svlm.parameters())
    assert all(p.grad is None for p in tempo.decoder.parameters())
    assert tempo.compressor.memory_tokens.grad.abs().sum() > 0
    assert tempo.projector.proj.weight.grad.abs().sum() > 0


def test_qwen3_vl_generate_under_budget_and_round_trip(tempo, qwen_batch, tmp_path):
    from tempo_kit.video import blank_image_segments

    tempo.eval()
    questions = ["Where is the red circle?", "What is this?", "Say hi", "What happens first?"]
    batch = inference_batch(
        tempo.tokenizer, [video(5, seed=4), image(5), blank_image_segments(), video(2, 6)], questions
    )
    calls = []
    hook = tempo.compressor.register_forward_hook(lambda m, a, o: calls.append(sum(len(s) for s in a[0])))
    out = tempo.generate(batch, max_new_tokens=3)
    hook.remove()
    assert calls == [8]  # the text-only sample's blank image is not compressed at inference
    video_alloc, image_alloc, text_alloc, short_alloc = out.allocations
    assert text_alloc is None
    assert video_alloc.total <= 20 and video_alloc.counts.min() >= 1 and video_alloc.relevance.shape == (5,)
    assert image_alloc.counts.tolist() == [8]  # one segment: min(k_max, B)
    assert short_alloc.total <= 20 and short_alloc.counts.min() >= 4  # paper k_min
    assert (video_alloc.relevance > 0).all() and (video_alloc.relevance < 1).all()

    with torch.no_grad():  # as if fine-tuned: one SVLM tensor differs from the base checkpoint
        tempo.compressor.svlm.language_model.norm.weight.add_(0.5)
    out = tempo.generate(batch, max_new_tokens=3)
    video_alloc = out.allocations[0]
    saved = tempo.save_pretrained(tmp_path / "kit")
    from safetensors.torch import load_file

    own = load_file(str(saved / "compressor" / "state_dict.safetensors"))
    assert set(own) == {"memory_tokens", "relevance_direction"}
    svlm = load_file(str(saved / "compressor" / "model.safetensors"))  # the Hugging Face layout
    assert "model.language_model.norm.weight" in svlm and "lm_head.weight" not in svlm
    assert len(svlm) == len([k for k in tempo.compressor.state_dict() if k.startswith("svlm.")])
    loaded = TempoModel.from_pretrained(saved).eval()
    for key, value in tempo.compressor.state_dict().items():
        assert torch.equal(value, loaded.compressor.state_dict()[key]), key
    again = loaded.generate(batch, max_new_tokens=3)
    assert torch.equal(out.token_ids, again.token_ids)
    assert torch.equal(video_alloc.counts, again.allocations[0].counts)
    torch.testing.assert_close(video_alloc.relevance, again.allocations[0].relevance, rtol=0, atol=0)
    with torch.no_grad():
        assert torch.equal(tempo(qwen_batch).loss, loaded(qwen_batch).loss)
    torch.testing.assert_close(
        tempo.compressor.relevance_direction, loaded.compressor.relevance_direction, rtol=0, atol=0
    )


def test_pooling_compressor_plugs_in_without_relevance(tiny_checkpoints):
    model = TempoModel.from_config(
        qwen_config(
            tiny_checkpoints,
            compressor={"name": "pooling", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 6},
        )
    ).eval()
    out = model.answer(video(4, seed=7), "What happens?", budget=16, max_new_tokens=2)
    allocation = out.allocations[0]
    assert allocation.relevance is None and allocation.counts.tolist() == [4, 4, 4, 4]
    assert out.stats[0].visual == 16
