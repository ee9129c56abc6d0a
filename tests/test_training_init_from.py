"""``run.init_from``: component settings either apply to the loaded model or are refused by name."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.errors import ConfigError
from tempo_kit.training.module import build_model


def recipe(init_from, **model):
    return {"run": {"init_from": str(init_from)}, "model": model, "data": {}}


def test_inapplicable_setting_is_refused_by_name(tiny_tempo_dir):
    # the folder was built with k_max 16; asking for 4 would be silently ignored by a plain load
    spec = {"name": "qwen3_vl", "pretrained": "checkpoints/Qwen3-VL-2B-Instruct", "k_max": 4}
    with pytest.raises(ConfigError, match=r"model\.compressor\.k_max=4 cannot apply .* built with k_max=16"):
        build_model(recipe(tiny_tempo_dir, compressor=spec))


def test_applicable_settings_apply_and_equal_ones_pass(tiny_tempo_dir):
    spec = {"name": "qwen3_vl", "pretrained": "elsewhere", "k_max": 16, "dtype": "bfloat16"}
    decoder = {"name": "hf_causal_lm", "attn_implementation": "eager", "dtype": "bfloat16"}
    model = build_model(recipe(tiny_tempo_dir, compressor=spec, decoder=decoder, budget=32))
    assert model.compressor.k_max == 16 and model.config.budget == 32
    assert next(model.compressor.svlm.parameters()).dtype == torch.bfloat16
    assert next(model.decoder.parameters()).dtype == torch.bfloat16
    assert model.decoder.model.config._attn_implementation == "eager"
