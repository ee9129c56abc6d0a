"""The compatibility matrix: every decoder family with the default compressor and every compressor
family with the default decoder, each through what a user does with a pair.

Per pair: built without weights on the meta device; one training step with everything trained and
one with LoRA on the decoder; the LoRA adapter loaded by ``PeftModel.from_pretrained`` on the base
checkpoint; save → ``from_pretrained`` bit-exact; ``infer`` answers with an allocation; a session's
follow-up equals a fresh question (or the pair's compressor has no prefix cache and the session
falls back, which is recorded). FSDP2 over two CPU processes runs every pair once (slow).

Each check's outcome goes into one JSON file (``TEMPO_KIT_COMPAT_MATRIX`` names it; a temporary
file otherwise); ``scripts/compat_matrix.py`` runs this file and renders the docs page from it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from compat_pairs import BUDGET, DECODER_LORA, frames, model_config, pair_id, pairs, train_batch, write_pair

from tempo_kit.decoders.families import BY_MODEL_TYPE
from tempo_kit.model import TempoModel
from tempo_kit.training.trainability import apply_trainability, merge_lora

TESTS = Path(__file__).resolve().parent
PAIRS = pairs()
FULL = {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"}
LORA = {"compressor": "frozen", "memory_tokens": "full", "projector": "full", "decoder": "lora"}
#: The checks, in the page's column order.
CHECKS = ("meta_build", "train_full", "train_lora", "peft_load", "round_trip", "infer", "follow_up", "fsdp2")


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    """``{pair: {check: outcome}}``, written to the results file as each check ends."""
    path = Path(os.environ.get("TEMPO_KIT_COMPAT_MATRIX") or tmp_path_factory.mktemp("compat") / "matrix.json")
    results: dict[str, dict[str, str]] = {}

    def record(pair, check: str, outcome: str) -> None:
        results.setdefault(pair_id(pair), {})[check] = outcome
        import tempo_kit.atomic as atomic

        atomic.write_text(path, json.dumps({"checks": list(CHECKS), "pairs": results}, indent=2, sort_keys=True) + "\n")

    return record


@pytest.fixture(scope="session")
def pair_paths(tiny_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("compat_pairs")
    return {pair: write_pair(root, pair, tiny_checkpoints) for pair in PAIRS}


def build(pair_paths, pair, seed: int = 0) -> TempoModel:
    torch.manual_seed(seed)  # memory tokens' init
    return TempoModel.from_config(model_config(pair_paths[pair], pair[0]))


def step(model: TempoModel, batch) -> float:
    """One AdamW step on ``batch``; returns the loss before it."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model(batch).loss
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def checked(matrix, pair, check: str, outcome: str = "yes"):
    """A context that records ``outcome`` if the block passes, ``no`` (and re-raises) if not."""

    class Recorder:
        def __enter__(self):
            return self

        def __exit__(self, kind, error, trace):
            matrix(pair, check, outcome if kind is None else "no")
            return False

    return Recorder()


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_pair_builds_trains_saves_and_answers(pair, pair_paths, matrix, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.training.adapters import save_adapters

    paths = pair_paths[pair]
    with checked(matrix, pair, "meta_build"):
        meta = TempoModel.from_config(model_config(paths, pair[0]), load_weights=False)
        assert all(t.is_meta for t in meta.parameters())
        family = meta.decoder.family
        assert family is BY_MODEL_TYPE[meta.decoder.model.config.model_type]
        assert {c.__name__ for c in meta.decoder.decoder_layer_classes} == {family.block_class}

    model = build(pair_paths, pair)
    batch = train_batch(model.tokenizer)
    with checked(matrix, pair, "train_full"):
        apply_trainability(model, FULL)
        before = model.decoder.model.get_output_embeddings().weight.detach().clone()
        assert torch.isfinite(torch.tensor(step(model, batch)))
        assert not torch.equal(before, model.decoder.model.get_output_embeddings().weight)

    model = build(pair_paths, pair)
    with checked(matrix, pair, "train_lora"):
        apply_trainability(model, LORA, {"decoder": DECODER_LORA})
        lora = {n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n}
        targets = {n.split(".lora_")[0].rsplit(".", 1)[1] for n in lora}
        assert targets == set(model.decoder.lora_target_modules)  # every projection of the family
        step(model, batch)
        step(model, batch)  # lora_B starts at zero: the second step moves the merged weights
    with checked(matrix, pair, "peft_load"):
        save_adapters(model, LORA, {"decoder": DECODER_LORA}, tmp_path / "adapters")
        base = AutoModelForCausalLM.from_pretrained(str(paths["llm"]))
        merged_peft = PeftModel.from_pretrained(base, str(tmp_path / "adapters" / "decoder")).merge_and_unload()
        merged_kit = merge_lora(model).decoder.model.state_dict()
        base_state = AutoModelForCausalLM.from_pretrained(str(paths["llm"])).state_dict()
        changed = set()
        for key, value in merged_peft.state_dict().items():
            torch.testing.assert_close(value, merged_kit[key], rtol=0, atol=1e-6)
            if not torch.equal(value, base_state[key]):
                changed.add(key.rsplit(".", 2)[-2])
        assert changed == set(model.decoder.lora_target_modules)  # the adapter acted on each projection

    with checked(matrix, pair, "round_trip"):
        model.eval()
        saved = model.save_pretrained(tmp_path / "kit")
        loaded = TempoModel.from_pretrained(saved).eval()
        for key, value in model.state_dict().items():
            assert torch.equal(value, loaded.state_dict()[key]), key
        with torch.no_grad():
            assert torch.equal(model(batch).loss, loaded(batch).loss)

    pipeline = TempoPipeline.from_pretrained(saved, compressor={"segment_batch_size": 2, "dtype": "float32"})
    clip = frames(5, count=24)
    kwargs = {"budget": BUDGET, "max_new_tokens": 3}
    with checked(matrix, pair, "infer"):
        result = pipeline.answer(frames=clip, query="Where is the red circle?", **kwargs)
        assert isinstance(result.answer, str)
        assert len(result.allocation.counts) == 3 and 0 < int(result.allocation.counts.sum()) <= BUDGET

    with pipeline.open(frames=clip) as session:
        session.ask("Where is the red circle?", **kwargs)
        follow = session.ask("What colour is the square?", **kwargs)
    cached = "prefix" in follow.reused
    with checked(matrix, pair, "follow_up", "yes" if cached else "fallback (no prefix cache: recompresses)"):
        fresh = pipeline.answer(frames=clip, query="What colour is the square?", **kwargs)
        assert follow.answer == fresh.answer
        assert follow.allocation.counts.tolist() == fresh.allocation.counts.tolist()
        assert (follow.allocation.relevance - fresh.allocation.relevance).abs().max() < 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_fsdp2_on_two_processes_shards_each_familys_blocks(pair_paths, matrix, tmp_path):
    """One gloo group of two processes runs every pair: FSDP2 over the family's blocks, one step,
    the same loss and weights as one process taking the same step."""
    spec = tmp_path / "pairs.json"
    spec.write_text(json.dumps([[pair_id(p), p[0], {k: str(v) for k, v in pair_paths[p].items()}] for p in PAIRS]))
    out = tmp_path / "fsdp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(TESTS / "compat_fsdp_worker.py"), str(spec), str(out)]
    ranks = [
        subprocess.Popen(command, env={**env, "RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]
    logs = [r.communicate(timeout=600)[0] for r in ranks]
    assert all(r.returncode == 0 for r in ranks), logs[0][-3000:] + logs[1][-3000:]
    found = json.loads(out.read_text())
    for pair in PAIRS:
        row = found[pair_id(pair)]
        with checked(matrix, pair, "fsdp2"):
            assert row["decoder_units"] == row["decoder_layers"] > 0
            assert set(row["decoder_blocks"]) == {BY_MODEL_TYPE[row["model_type"]].block_class}
            assert abs(row["loss_sharded"] - row["loss_single"]) < 1e-5
            assert row["max_weight_difference"] < 1e-5
