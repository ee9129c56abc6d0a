"""FSDP2 on two CPU processes (gloo), run as a user runs it: ``tempo-kit fit`` in a subprocess.

- full fine-tuning and LoRA log the same losses as one process over the same global batch;
- each rank holds half of the parameters after set-up;
- a run killed after its step-2 sharded checkpoint and resumed with ``--resume last`` ends where a
  straight run ends;
- the exported folder loads with ``TempoModel.from_pretrained`` and answers as the one-process
  export does;
- what FSDP2 cannot run is refused before any process starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_run_overrides
from torch import nn

from tempo_kit.compressors.base import Compressor
from tempo_kit.errors import ConfigError
from tempo_kit.recipes import load_recipe, to_dict
from tempo_kit.registry import COMPRESSORS
from tempo_kit.training.commands import run_recipe
from tempo_kit.types import CompressorOutput

TESTS = Path(__file__).resolve().parent
DEMO = TESTS.parent / "recipes" / "demo.yaml"
FSDP = ["trainer.devices=2", "trainer.strategy.name=fsdp", "trainer.strategy.process_group_backend=gloo"]
LORA = [
    "trainable.decoder=lora",
    "lora.decoder.module=model",
    "lora.decoder.r=4",
    "lora.decoder.lora_alpha=8",
    "lora.decoder.lora_dropout=0.0",  # dropout draws differ between one process and two
    "lora.decoder.target_modules=[q_proj,v_proj]",
]


def overrides(tiny_checkpoints, data: Path, steps: int) -> list[str]:
    return [
        *tiny_run_overrides(tiny_checkpoints, data),
        "trainer.global_batch_size=4",
        "trainer.log_every_n_steps=1",
        f"trainer.max_steps={steps}",
        "trainer.checkpoint_every_n_steps=2",
        "router.weight=0",  # the demo's relevance objective off: the shards are counted against a plain model
    ]


def recipe_with_probe(folder: Path, probe: Path, crash_at_step: int = -1) -> Path:
    """The demo recipe plus the test callback (``fsdp_probe:Probe``)."""
    path = folder / f"recipe_probe{crash_at_step}.yaml"
    callback = {"name": "fsdp_probe:Probe", "out": str(probe), "crash_at_step": crash_at_step}
    path.write_text(f"base: {DEMO}\ntrainer:\n  callbacks: [{json.dumps(callback)}]\n")
    return path


def run_cli(args: list[str], ok: bool = True) -> subprocess.CompletedProcess:
    """``tempo-kit ARGS`` in a subprocess (the test callbacks importable), as a user runs it."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tempo_kit.cli", *args], capture_output=True, text=True, env=env, timeout=900
    )
    assert (result.returncode == 0) == ok, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def fit(recipe: Path, out: Path, args: list[str], *, ok: bool = True, resume: bool = False):
    command = ["fit", "--recipe", str(recipe), *args, f"run.output_dir={out}"]
    return run_cli([*command, "--resume", "last"] if resume else command, ok)


def losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["train/loss"] for row in rows if "train/loss" in row}


def assert_same_losses(reference: dict[int, float], other: dict[int, float]) -> None:
    assert sorted(reference) == sorted(other)
    for step in reference:
        assert other[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-5), (step, reference, other)


def assert_same_weights(a: Path, b: Path) -> None:
    from tempo_kit.model import TempoModel

    left, right = TempoModel.from_pretrained(a).state_dict(), TempoModel.from_pretrained(b).state_dict()
    assert left.keys() == right.keys()
    for key in left:
        assert torch.allclose(left[key].float(), right[key].float(), rtol=1e-4, atol=1e-6), key


def answers(final: Path, video: str) -> tuple[str, list[int], list[float]]:
    """The reply, the allocation and the relevance scores (rounded) of one question."""
    from tempo_kit.inference.api import TempoPipeline

    pipe = TempoPipeline.from_pretrained(final)
    result = pipe.answer(video=video, query="What colour was the shape?", max_new_tokens=4)
    allocation = result.allocation
    return result.answer, allocation.counts.tolist(), [round(float(s), 4) for s in allocation.relevance]


@pytest.fixture(scope="module")
def full_finetuning(tiny_checkpoints, tiny_needle_benchmark, tmp_path_factory):
    """Full fine-tuning, 4 steps, on one process (``one``) and under FSDP2 on two (``two``, probed
    into ``probe/``); the fit overrides (``args``) and the folder holding the runs (``root``)."""
    root = tmp_path_factory.mktemp("fsdp2_full")
    args = [*overrides(tiny_checkpoints, tiny_needle_benchmark, steps=4), "trainable.compressor=full"]
    fit(DEMO, root / "one", [*args, "trainer.devices=1"])
    fit(recipe_with_probe(root, root / "probe"), root / "two", [*args, *FSDP])
    return {"one": root / "one", "two": root / "two", "args": args, "root": root}


@pytest.mark.slow
def test_fsdp2_full_finetuning_matches_one_process_resumes_and_exports(
    full_finetuning, tiny_needle_benchmark, tmp_path
):
    args, one, two = full_finetuning["args"], full_finetuning["one"], full_finetuning["two"]
    resumed = tmp_path / "resumed"
    assert_same_losses(losses(one), losses(two))
    assert losses(one)[4] != losses(one)[1]  # the weights did move

    ranks = [json.loads((full_finetuning["root"] / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    full = ranks[0]["full"]
    assert full == sum(p.numel() for p in _plain_model(one).parameters())
    assert sum(r["local"] for r in ranks) == full  # the shards partition the model
    for rank in ranks:  # each rank holds about half (blocks split along their first dimension)
        assert 0.45 * full <= rank["local"] <= 0.55 * full, ranks

    crash = recipe_with_probe(tmp_path, tmp_path / "probe_crash", crash_at_step=2)
    fit(crash, resumed, [*args, *FSDP], ok=False)
    checkpoint = resumed / "checkpoints" / "last.ckpt"
    assert checkpoint.is_dir() and (checkpoint / ".metadata").is_file()  # one shard file per rank
    assert sorted(p.name for p in checkpoint.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    fit(DEMO, resumed, [*args, *FSDP], resume=True)
    assert_same_losses(losses(two), losses(resumed))
    assert_same_weights(two / "final", resumed / "final")  # the resumed run ends where the straight one does

    assert_same_weights(one / "final", two / "final")
    video = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])["video"]
    video = str((tiny_needle_benchmark.parent / video).resolve())
    assert answers(two / "final", video) == answers(one / "final", video)


def evaluate(args: list[str], out: Path, verb: str = "validate", ckpt: Path | None = None) -> dict[str, float]:
    """``tempo-kit <verb>`` on one process, in this process; its metrics at full precision."""
    recipe = to_dict(load_recipe(DEMO, [*args, f"run.output_dir={out}"]))
    return run_recipe(recipe, verb, ckpt=None if ckpt is None else str(ckpt))


def assert_same_metrics(reference: dict[str, float], other: dict[str, float]) -> None:
    assert reference.keys() == other.keys() and any(k.endswith("/loss") for k in reference), (reference, other)
    for key in reference:
        assert other[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), (key, reference, other)


@pytest.mark.slow
def test_sharded_checkpoint_evaluates_on_fsdp_and_on_one_process_as_its_unsharded_state(
    full_finetuning, tiny_needle_benchmark, tmp_path
):
    from tempo_kit.model import TempoModel
    from tempo_kit.training.sharded_folder import read_sharded_checkpoint

    two = full_finetuning["two"]
    sharded = two / "checkpoints" / "last.ckpt"  # step 4, the weights final/ was exported from
    args = [*full_finetuning["args"], f"data.val_files={tiny_needle_benchmark}"]
    unsharded = evaluate([*args, f"run.init_from={two / 'final'}"], tmp_path / "final")

    checkpoint = read_sharded_checkpoint(sharded)  # the shards joined on one process
    assert checkpoint["global_step"] == 4
    exported = TempoModel.from_pretrained(two / "final").state_dict()
    assert checkpoint["state_dict"].keys() == {f"model.{key}" for key in exported}
    for key, value in exported.items():
        assert torch.equal(checkpoint["state_dict"][f"model.{key}"], value), key

    assert_same_metrics(unsharded, evaluate(args, tmp_path / "one_process", ckpt=sharded))
    tested = evaluate([*args, f"data.test_files={tiny_needle_benchmark}"], tmp_path / "test", "test", sharded)
    assert_same_metrics({k.replace("val/", "test/"): v for k, v in unsharded.items()}, tested)

    out = tmp_path / "fsdp"  # the shards loaded into the sharded model, two processes
    result = run_cli(["validate", "--recipe", str(DEMO), *args, *FSDP, f"run.output_dir={out}", "--ckpt", str(sharded)])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert_same_metrics(unsharded, {k: v for k, v in rows[-1].items() if k != "step"})
    assert f"val/loss: {unsharded['val/loss']:.4f}" in result.stdout


@pytest.mark.slow
def test_partial_sharded_checkpoint_is_refused_before_any_process_starts(
    full_finetuning, tiny_needle_benchmark, tmp_path
):
    import shutil

    from tempo_kit.errors import CheckpointError

    sharded = full_finetuning["two"] / "checkpoints" / "last.ckpt"
    args = [*full_finetuning["args"], f"data.val_files={tiny_needle_benchmark}", *FSDP]
    damages = {
        "no_index": (lambda folder: (folder / ".metadata").unlink(), "it has no .metadata"),
        "no_shard": (
            lambda folder: (folder / "__1_0.distcp").unlink(),
            "shard file __1_0.distcp named by its .metadata missing (every rank's shard must be in this one folder",
        ),
        "cut_shard": (lambda folder: os.truncate(folder / "__0_0.distcp", 100), "shard file __0_0.distcp cut short"),
        "flipped_shard": (
            lambda folder: _flip_byte(folder / "__1_0.distcp"),
            f"{tmp_path / 'flipped_shard' / 'last.ckpt' / '__1_0.distcp'} does not match the checksum it was saved",
        ),
        "swapped_shard": (  # rank 1's shard under rank 0's name: the same size, other values
            lambda folder: shutil.copy2(folder / "__1_0.distcp", folder / "__0_0.distcp"),
            f"{tmp_path / 'swapped_shard' / 'last.ckpt' / '__0_0.distcp'} ",
        ),
        "no_meta": (lambda folder: (folder / "meta.pt").unlink(), "it has no meta.pt"),
        "cut_meta": (lambda folder: os.truncate(folder / "meta.pt", 100), "meta.pt has 100 bytes but was saved with"),
    }
    for name, (damage, reason) in damages.items():
        folder = tmp_path / name / "last.ckpt"
        shutil.copytree(sharded, folder)
        damage(folder)
        out = tmp_path / name / "run"
        recipe = to_dict(load_recipe(DEMO, [*args, f"run.output_dir={out}"]))
        with pytest.raises(CheckpointError) as caught:
            run_recipe(recipe, "validate", ckpt=str(folder))  # two devices asked: nothing was spawned
        message = str(caught.value)
        assert message.startswith(f"--ckpt: {folder} is damaged: ") and reason in message, message
        assert message.endswith(f"no other checkpoint in {folder.parent} reads whole: pass --ckpt a whole checkpoint")
        assert not out.exists()

    one_process = to_dict(load_recipe(DEMO, [*full_finetuning["args"], f"run.output_dir={tmp_path / 'resume'}"]))
    with pytest.raises(ConfigError, match="is a sharded checkpoint .* continue it with trainer.strategy.name=fsdp"):
        run_recipe(one_process, "fit", resume=str(sharded))


def _flip_byte(path: Path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _plain_model(run: Path):
    from tempo_kit.model import TempoModel

    return TempoModel.from_pretrained(run / "final")


@pytest.mark.slow
def test_fsdp2_lora_matches_one_process_and_exports_merged(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    from safetensors.torch import load_file

    args = [*overrides(tiny_checkpoints, tiny_needle_benchmark, steps=3), *LORA]
    one, two = tmp_path / "one", tmp_path / "two"
    fit(DEMO, one, [*args, "trainer.devices=1"])
    fit(DEMO, two, [*args, *FSDP])
    assert_same_losses(losses(one), losses(two))
    assert_same_weights(one / "final", two / "final")  # adapters merged into the LLM
    adapter = "adapters/decoder/adapter_model.safetensors"
    left, right = load_file(str(one / adapter)), load_file(str(two / adapter))
    assert left.keys() == right.keys() and any("lora_A" in k for k in left)
    for key in left:
        assert torch.allclose(left[key], right[key], rtol=1e-4, atol=1e-6), key


# ----------------------------------------------------------------------------- refused up front
class MeanColour(Compressor):
    """A compressor with no transformer blocks: each segment's mean colour, projected to k_max tokens."""

    def __init__(self, k_max: int = 4, hidden_size: int = 8) -> None:
        super().__init__()
        self.k_max, self.hidden_size = k_max, hidden_size
        self.project = nn.Linear(3, k_max * hidden_size)

    def forward(self, segments, queries) -> CompressorOutput:
        colours = torch.cat([s.frames.float().mean(dim=(1, 2, 3)) / 255 for s in segments])
        memory = self.project(colours).view(-1, self.k_max, self.hidden_size)
        return CompressorOutput(memory, None, [len(s.frames) for s in segments])


COMPRESSORS.register("mean_colour_no_blocks", override=True)(MeanColour)


def refused(tiny_checkpoints, data: Path, out: Path, extra: list[str]) -> str:
    recipe = to_dict(load_recipe(DEMO, [*overrides(tiny_checkpoints, data, 2), f"run.output_dir={out}", *FSDP, *extra]))
    with pytest.raises(ConfigError) as caught:
        run_recipe(recipe, "fit")  # one process: nothing was spawned when the error came
    assert not (out / "checkpoints").exists()
    return str(caught.value)


@pytest.mark.slow
def test_fsdp2_refuses_what_it_cannot_run_before_starting(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    data, out = tiny_needle_benchmark, tmp_path / "run"
    message = refused(tiny_checkpoints, data, out, ["trainer.devices=1"])
    assert "shards the model over processes, but this run has 1; set trainer.devices to 2" in message

    # the demo's router.prompt reads model.compressor.eval_prompt, which the new compressor lacks
    swap = ["~model.compressor", "model.compressor.name=mean_colour_no_blocks", "router.prompt=routing"]
    message = refused(tiny_checkpoints, data, out, swap)
    assert "the compressor (MeanColour) has no transformer blocks to shard" in message
    assert "trainer.strategy.name=ddp" in message

    message = refused(tiny_checkpoints, data, out, [*LORA[:-1], "lora.decoder.target_modules=[embed_tokens]"])
    assert "LoRA is supported on linear layers only" in message
    assert "model.embed_tokens (Embedding)" in message

    message = refused(tiny_checkpoints, data, out, ["trainer.strategy.fsdp.sharding_strategy=HYBRID_SHARD"])
    assert "sharding_strategy='HYBRID_SHARD' must be one of FULL_SHARD, SHARD_GRAD_OP" in message
    message = refused(tiny_checkpoints, data, out, ["trainer.precision=16-mixed"])
    assert "trainer.precision='16-mixed' is not supported with trainer.strategy.name=fsdp" in message


def test_fsdp2_mixed_precision_policy_follows_the_recipe():
    from tempo_kit.training.fsdp2 import mixed_precision_policy
    from tempo_kit.training.strategies import trainer_precision

    policy = mixed_precision_policy("bf16-mixed")
    assert (policy.param_dtype, policy.reduce_dtype) == (torch.bfloat16, torch.float32)
    assert mixed_precision_policy("32-true").param_dtype is None
    assert trainer_precision({"name": "fsdp"}, "bf16-mixed") == "32-true"  # the policy casts, not autocast
    assert trainer_precision({"name": "ddp"}, "bf16-mixed") == "bf16-mixed"
