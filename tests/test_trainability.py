"""Per-part trainability, LoRA injection/merging, parameter groups and schedules.

Built on a small module shaped like ``TempoModel`` (compressor with an SVLM language model and
memory tokens, projector, decoder with a Hugging Face causal LM) made from tiny Qwen3 configs;
the per-stage checks on the real model are in ``test_training_stages.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tempo_kit.errors import ConfigError
from tempo_kit.recipes import DEFAULTS
from tempo_kit.training.optim import build_optimizer, build_scheduler, param_groups, warmup_steps
from tempo_kit.training.trainability import apply_trainability, has_lora, lora_state_dict, merge_lora, part_of


def tiny_qwen3(hidden=32):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=64,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config)


class Svlm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.visual = nn.Linear(8, 32)
        self.language_model = tiny_qwen3().model


class Compressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.svlm = Svlm()
        self.memory_tokens = nn.Parameter(torch.randn(4, 32))


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = tiny_qwen3(hidden=48)


class Tempoish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.compressor = Compressor()
        self.projector = nn.Linear(32, 48)
        self.decoder = Decoder()

    def forward(self, ids):
        svlm = self.compressor.svlm
        pixels = svlm.visual(torch.ones(1, 3, 8))
        memory = self.compressor.memory_tokens[None]
        hidden = svlm.language_model(
            inputs_embeds=torch.cat([svlm.language_model.embed_tokens(ids), pixels, memory], 1)
        )
        visual = self.projector(hidden.last_hidden_state[:, -memory.shape[1] :])
        text = self.decoder.model.get_input_embeddings()(ids)
        return self.decoder.model(inputs_embeds=torch.cat([visual, text], 1)).logits.float().pow(2).mean()


LORA = {part: {**DEFAULTS["lora"][part], "lora_dropout": 0.0} for part in ("compressor", "decoder")}


def test_part_of():
    assert part_of("compressor.memory_tokens") == "memory_tokens"
    assert part_of("compressor.memory_tokens_extra.weight") == "compressor"
    assert part_of("compressor.svlm.visual.weight") == "compressor"
    assert part_of("projector.proj.bias") == "projector"
    assert part_of("decoder.model.lm_head.weight") == "decoder"
    assert part_of("allocator.scale") is None
    # names inside FSDP / activation-checkpointing wrappers
    assert (
        part_of(
            "decoder.model.model.layers.0._fsdp_wrapped_module._checkpoint_wrapped_module.mlp.up_proj.weight"
        )
        == "decoder"
    )
    assert part_of("_fsdp_wrapped_module.compressor.memory_tokens") == "memory_tokens"


def _train(model, steps=2):
    groups = param_groups(model, DEFAULTS["optim"]["lr"] | {"compressor": 1e-2, "decoder": 1e-2})
    optimizer = build_optimizer(groups)
    ids = torch.arange(6)[None]
    for _ in range(steps):
        optimizer.zero_grad()
        model(ids).backward()
        optimizer.step()


def _changed(before, model):
    after = dict(model.named_parameters())
    return {n for n, p in after.items() if n in before and not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize(
    "modes",
    [
        {
            "compressor": "frozen",
            "memory_tokens": "full",
            "projector": "full",
            "decoder": "frozen",
        },  # stage 0
        {
            "compressor": "frozen",
            "memory_tokens": "frozen",
            "projector": "frozen",
            "decoder": "full",
        },  # stage 3
        {"compressor": "lora", "memory_tokens": "full", "projector": "full", "decoder": "lora"},
        {"compressor": "full", "memory_tokens": "frozen", "projector": "full", "decoder": "lora"},
    ],
)
def test_only_the_intended_parameters_change(modes):
    model = Tempoish()
    report = apply_trainability(model, modes, LORA)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model)
    changed = _changed(before, model)
    for name, _ in model.named_parameters():
        mode = modes[part_of(name)]
        expected = mode == "full" or (mode == "lora" and "lora_" in name)
        assert (name in changed) == expected, f"{name} ({mode}) changed={name in changed}"
    for part, mode in modes.items():
        assert (report.trainable.get(part, 0) > 0) == (mode != "frozen"), part
        if mode == "lora":
            assert 0 < report.trainable[part] < report.total[part]
    assert ("lora" in modes.values()) == has_lora(model)


def test_lora_goes_only_where_asked():
    model = Tempoish()
    apply_trainability(
        model,
        {"compressor": "lora", "memory_tokens": "frozen", "projector": "frozen", "decoder": "frozen"},
        LORA,
    )
    names = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert names and all(n.startswith("compressor.svlm.language_model.") for n in names)
    assert not any("visual" in n for n in names)  # the vision tower is not a LoRA target


def test_merge_restores_keys_and_function():
    model = Tempoish()
    plain_keys = list(model.state_dict())
    apply_trainability(
        model, {"compressor": "lora", "memory_tokens": "full", "projector": "full", "decoder": "lora"}, LORA
    )
    _train(model, steps=3)
    adapters = lora_state_dict(model)
    assert adapters and all("lora_" in k for k in adapters)
    ids = torch.arange(6)[None]
    with torch.no_grad():
        expected = model(ids)
    merge_lora(model)
    assert not has_lora(model)
    assert list(model.state_dict()) == plain_keys
    with torch.no_grad():
        assert torch.allclose(model(ids), expected, rtol=1e-4, atol=1e-6)


def test_lora_errors_name_the_setting():
    model = Tempoish()
    with pytest.raises(
        ConfigError, match=r"lora.decoder.module: 'modle' does not exist.*children are: model"
    ):
        apply_trainability(model, {"decoder": "lora"}, {"decoder": {**LORA["decoder"], "module": "modle"}})
    with pytest.raises(ConfigError, match="lora.decoder: peft could not place adapters"):
        apply_trainability(
            model, {"decoder": "lora"}, {"decoder": {**LORA["decoder"], "target_modules": ["qkv"]}}
        )
    with pytest.raises(ConfigError, match="only compressor and decoder take LoRA"):
        apply_trainability(model, {"projector": "lora"}, LORA)


def test_param_groups_are_named_with_their_learning_rates():
    model = Tempoish()
    apply_trainability(
        model, {"compressor": "full", "memory_tokens": "full", "projector": "frozen", "decoder": "full"}
    )
    lr = {"compressor": 2e-6, "memory_tokens": 1e-5, "projector": 1e-5, "decoder": 3e-5}
    groups = param_groups(model, lr)
    assert [g["name"] for g in groups] == ["compressor", "memory_tokens", "decoder"]
    assert [g["lr"] for g in groups] == [2e-6, 1e-5, 3e-5]
    assert groups[1]["params"] == [model.compressor.memory_tokens]
    counted = sum(p.numel() for g in groups for p in g["params"])
    assert counted == sum(p.numel() for p in model.parameters() if p.requires_grad)
    apply_trainability(
        model, dict.fromkeys(("compressor", "memory_tokens", "projector", "decoder"), "frozen")
    )
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(model, lr)


def test_cosine_schedule_matches_hugging_face():
    from transformers import get_cosine_schedule_with_warmup

    total = 97
    mine = build_scheduler(torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0), total, 0.03)
    theirs = get_cosine_schedule_with_warmup(
        torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0), warmup_steps(total, 0.03), total
    )
    for _ in range(total):
        assert math.isclose(mine.get_last_lr()[0], theirs.get_last_lr()[0], abs_tol=1e-12)
        mine.optimizer.step(), theirs.optimizer.step()
        mine.step(), theirs.step()
    assert warmup_steps(total, 0.03) == 3


def lr_factor(step, total, ratio, kind, floor):
    """The multiplier of a group's peak learning rate at ``step``, read from the kit's scheduler."""
    scheduler = build_scheduler(torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0), total, ratio, kind, floor)
    return scheduler.lr_lambdas[0](step)


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 5000),
    ratio=st.floats(0, 0.5),
    floor=st.floats(0, 0.5),
    kind=st.sampled_from(["cosine", "linear", "constant"]),
    data=st.data(),
)
def test_schedule_shape(total, ratio, floor, kind, data):
    floor = floor if kind == "cosine" else 0.0  # only cosine has a floor
    warmup = warmup_steps(total, ratio)
    step = data.draw(st.integers(0, total))
    factor = lr_factor(step, total, ratio, kind, floor)
    if step < warmup:
        assert factor == pytest.approx(step / warmup)
    else:
        assert floor - 1e-12 <= factor <= 1.0 + 1e-12
        later = lr_factor(min(step + 1, total), total, ratio, kind, floor)
        assert later <= factor + 1e-12  # never rises after warm-up
    if kind != "constant" and total > warmup:
        assert lr_factor(total, total, ratio, kind, floor) == pytest.approx(floor)


def test_schedule_floor_needs_cosine():
    with pytest.raises(ValueError, match="needs the cosine schedule"):
        lr_factor(0, 10, 0.1, "linear", 0.1)
    # hand-worked: 10 steps, ceil(0.1 × 10) = 1 warm-up step, floor 0.2: step 0 is 0, step 1 the
    # peak, step 10 the floor; half-way through the decay (progress 4.5 / 9) 0.2 + 0.8 × 0.5 = 0.6
    assert lr_factor(1, 10, 0.1, "cosine", 0.2) == pytest.approx(1.0)
    assert lr_factor(10, 10, 0.1, "cosine", 0.2) == pytest.approx(0.2)
    assert lr_factor(0, 10, 0.1, "cosine", 0.2) == 0.0
    assert lr_factor(5.5, 10, 0.1, "cosine", 0.2) == pytest.approx(0.6)
