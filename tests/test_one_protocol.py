"""One protocol: ``infer``, ``eval`` and the lmms-eval model ask a model the same question the same way.

The model is saved with its own settings (``ata`` with ``mode=exact``, the ``qwen3_vl`` frame
geometry): every route must use them all, the allocator's arguments included, so the three spend
the same visual tokens on the same video and prompt.
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def own_model(tiny_checkpoints, tmp_path_factory):
    from tempo_kit.model import TempoModel

    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(tiny_checkpoints["svlm"]), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])},
            "budget": 48,
            "allocator": {"name": "ata", "mode": "exact"},
            "preprocessing": "qwen3_vl",
        }
    )
    return model.save_pretrained(tmp_path_factory.mktemp("own_settings"))


@pytest.mark.slow
def test_eval_infer_and_lmms_eval_spend_the_same_tokens(own_model, tiny_needle_benchmark, tmp_path, capsys):
    from tempo_kit.cli import main
    from tempo_kit.inference.api import TempoPipeline

    out = tmp_path / "eval"
    argv = ["--model", str(own_model), "--max-new-tokens", "1", "--no-progress"]
    assert main(["eval", "--annotations", str(tiny_needle_benchmark), "--limit", "1", "--output", str(out), *argv]) == 0
    (results,) = out.glob("*.jsonl")
    record = json.loads(results.read_text().splitlines()[0])
    assert "ata-mode-exact" in results.name  # the setting names the model's allocator with its arguments
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = str(tiny_needle_benchmark.parent / row["video"])
    capsys.readouterr()
    assert main(["infer", "--video", video, "--query", record["prompt"], "--json", *argv]) == 0
    inferred = json.loads(capsys.readouterr().out)
    assert inferred["settings"]["allocator"] == {"name": "ata", "mode": "exact"}
    assert inferred["settings"]["preprocessing"] == "qwen3_vl"
    assert record["tokens"]["visual_tokens"] == inferred["tokens"]["visual_tokens"] == 48
    # the released-mode allocator (what a route dropping the arguments used) spends fewer here
    released = TempoPipeline.from_pretrained(own_model).answer(
        video=video, query=record["prompt"], allocator="ata", max_new_tokens=1
    )
    assert released.tokens_used < 48

    lmms_eval_model = pytest.importorskip("tempo_kit.evaluation.lmms_eval_model")
    lmm = lmms_eval_model.TempoKitLMM(pretrained=str(own_model), device="cpu")
    assert lmm.question.sampling.preprocessing == "qwen3_vl"  # the model's own geometry
    assert lmm.question.allocator == {"name": "ata", "mode": "exact"}
    asked = lmm.pipeline.answer(video=video, query=record["prompt"], max_new_tokens=1, **lmm.call_kwargs)
    assert asked.tokens_used == 48
    released_geometry = lmms_eval_model.TempoKitLMM(pretrained=str(own_model), device="cpu", preprocessing="released")
    assert released_geometry.question.sampling.preprocessing == "released"


@pytest.mark.slow
def test_lmms_eval_model_arguments_are_checked_before_any_request(own_model):
    lmms_eval_model = pytest.importorskip("tempo_kit.evaluation.lmms_eval_model")
    from tempo_kit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown key 'max_frame' \(did you mean 'max_frames'\?\)"):
        lmms_eval_model.TempoKitLMM(pretrained=str(own_model), device="cpu", max_frame="8")
    with pytest.raises(ConfigError, match="preprocessing='qwen'"):
        lmms_eval_model.TempoKitLMM(pretrained=str(own_model), device="cpu", preprocessing="qwen")
    lmm = lmms_eval_model.TempoKitLMM(pretrained=str(own_model), device="cpu", window="4", fps="1.5", resize="torch")
    assert (lmm.question.sampling.window, lmm.question.sampling.fps, lmm.question.sampling.resize) == (4, 1.5, "torch")
