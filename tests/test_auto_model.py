"""A saved Tempo model through transformers' Auto classes gives TempoPipeline's answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def video(tiny_needle_benchmark):
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    return str(tiny_needle_benchmark.parent / row["video"]), row["question"]


def test_auto_model_answers_like_the_pipeline(tiny_tempo_dir, video):
    from transformers import AutoConfig, AutoModel

    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.model.auto import TempoKitConfig, TempoKitModel

    assert isinstance(AutoConfig.from_pretrained(str(tiny_tempo_dir)), TempoKitConfig)
    model = AutoModel.from_pretrained(str(tiny_tempo_dir))
    assert isinstance(model, TempoKitModel)
    path, question = video
    theirs = model.answer(path, question, max_new_tokens=4)
    ours = TempoPipeline.from_pretrained(tiny_tempo_dir).answer(path, question, max_new_tokens=4)
    assert theirs.answer == ours.answer
    assert theirs.allocation.counts.tolist() == ours.allocation.counts.tolist()
    reference = TempoPipeline.from_pretrained(tiny_tempo_dir).model.state_dict()
    for (key, a), (_, b) in zip(model.tempo.state_dict().items(), reference.items(), strict=True):
        assert a.equal(b), key


@pytest.mark.slow
def test_trust_remote_code_loads_without_importing_the_kit(tiny_tempo_dir, tmp_path):
    code = (
        "import sys; from transformers import AutoModel\n"
        f"m = AutoModel.from_pretrained({str(tiny_tempo_dir)!r}, trust_remote_code=True)\n"
        "print(type(m).__name__, type(m.tempo).__name__, 'tempo_kit.model' in sys.modules)\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["TempoKitModel", "TempoModel", "True"]
