"""Fault suite, runs: kill -9 during fit then resume equals a straight run bit for bit; a damaged
last checkpoint names the newest readable one; a used run folder is refused; a recipe fuzz gets
one-line errors; bad annotation encodings and odd videos get their own messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tempo_kit.errors import TempoKitError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def fit_command(tiny_checkpoints, data, out, *extra):
    return [
        sys.executable, "-m", "tempo_kit.cli", "fit", "--recipe", str(RECIPE),
        f"model.compressor.pretrained={tiny_checkpoints['svlm']}",
        f"model.decoder.pretrained={tiny_checkpoints['llm']}",
        "model.compressor.k_max=8", f"run.output_dir={out}", f"data.train_files={data}",
        "data.val_files=null", "data.max_frames=8", "data.max_long_edge=64", "data.num_workers=0",
        "data.max_samples=12", "trainer.global_batch_size=2", "trainer.micro_batch_size=1",
        "trainer.max_epochs=1", "trainer.checkpoint_every_n_steps=1", "trainer.enable_progress_bar=false",
        *extra,
    ]  # fmt: skip


def final_tensors(out):
    from safetensors.torch import load_file

    files = ("projector/state_dict.safetensors", "decoder/model.safetensors", "compressor/state_dict.safetensors")
    return {f"{f}:{k}": v for f in files for k, v in load_file(out / "final" / f).items()}


@pytest.mark.slow
def test_kill_9_during_fit_then_resume_equals_a_straight_run(tiny_checkpoints, tiny_needle_benchmark, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run(fit_command(tiny_checkpoints, tiny_needle_benchmark, straight), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    run = subprocess.Popen(
        fit_command(tiny_checkpoints, tiny_needle_benchmark, killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not list(killed.glob("checkpoints/step000000[3-9].ckpt")) and run.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    last = killed / "checkpoints" / "last.ckpt"
    step = torch.load(last, weights_only=False)["global_step"]
    assert 1 <= step < 6, step  # killed inside the epoch (6 steps of 2 samples)

    # a fit without --resume does not overwrite the killed run
    again = subprocess.run(fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), capture_output=True, text=True)
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume" in again.stderr

    resumed = subprocess.run(
        [*fit_command(tiny_checkpoints, tiny_needle_benchmark, killed), "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = final_tensors(straight), final_tensors(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(last, weights_only=False)["global_step"] == 6  # last.ckpt is the final step
    assert not [p for p in killed.rglob("*") if ".partial-" in p.name]

    # a damaged last checkpoint is reported with the newest readable one named
    os.truncate(last, last.stat().st_size // 2)
    from tempo_kit.training.commands import resolve_checkpoint

    newest = sorted(killed.glob("checkpoints/step*.ckpt"))[-1]
    with pytest.raises(TempoKitError, match=f"last.ckpt is damaged: .*newest readable checkpoint is {newest}"):
        resolve_checkpoint("last", killed, "--resume")


FUZZ_KEYS = [
    "trainer.max_epochs", "trainer.max_steps", "trainer.devices", "trainer.precision", "trainer.num_nodes",
    "trainer.global_batch_size", "trainer.log_every_n_steps", "trainer.val_check_interval",
    "trainer.limit_val_batches", "trainer.cpu_threads", "trainer.strategy", "trainer.strategy.name",
    "optim.lr.decoder", "optim.warmup_ratio", "optim.betas", "optim.grad_clip", "optim.scheduler",
    "data.window", "data.fps", "data.max_frames", "data.num_workers", "data.max_long_edge", "data.on_error",
    "model.budget", "model.k_min", "model.compressor.k_max", "model.tag_images", "run.seed",
    "validation.max_new_tokens", "trainable.decoder", "run.export_final",
]  # fmt: skip
FUZZ_VALUES = st.one_of(
    st.integers(-3, 5),
    st.sampled_from(["abc", "auto", "''", "null", "true", "[1, 2]", "{a: 1}", "1e-5", "nan", "[", "0.5"]),
    st.floats(-2, 2, allow_nan=False).map(str),
)


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(FUZZ_KEYS), value=FUZZ_VALUES)
def test_recipe_fuzz_gives_one_line_errors_or_a_buildable_trainer(key, value):
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.trainer import build_trainer

    try:
        recipe = to_dict(load_recipe(RECIPE, [f"{key}={value}"], check_paths=False))
    except TempoKitError as error:
        assert "\n" not in str(error) and key.split(".")[-1] in str(error) or "override" in str(error)
        return
    if key.startswith("trainer."):  # what validation accepted, Lightning accepts too
        recipe["run"]["output_dir"] = "/nonexistent-never-written"
        try:
            build_trainer(recipe, "validate")
        except TempoKitError as error:
            assert "\n" not in str(error)


def test_recipe_yaml_syntax_error_is_one_line(tmp_path):
    from tempo_kit.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochs: [1,\n")
    done = subprocess.run(
        [sys.executable, "-m", "tempo_kit.cli", "fit", "--recipe", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and f"recipe '{bad}' is not valid YAML" in done.stderr
    assert main(["fit", "--recipe", str(RECIPE), "trainer.max_epochs=abc", "--print"]) == 2


def test_an_svlm_path_that_is_not_qwen3_vl_is_refused_before_building(tiny_checkpoints):
    from tempo_kit.recipes import load_recipe

    with pytest.raises(TempoKitError, match=r"is a 'qwen3' model, not 'qwen3_vl'"):
        load_recipe(
            RECIPE,
            [f"model.compressor.pretrained={tiny_checkpoints['llm']}", f"model.decoder.pretrained={tiny_checkpoints['llm']}"],
        )


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1"])
def test_annotation_encodings(tmp_path, encoding):
    from tempo_kit.data.rows import read_rows

    path = tmp_path / "rows.jsonl"
    path.write_bytes('{"question": "Où est le café ?"}\n'.encode(encoding))
    if encoding == "utf-8-sig":
        assert read_rows(path) == [(1, {"question": "Où est le café ?"})]
    else:
        with pytest.raises(TempoKitError, match=r"is not UTF-8 text \(byte 0xf9 on line 1\); re-save it as UTF-8"):
            read_rows(path)


def test_audio_only_and_tiny_videos(tmp_path):
    import av
    import numpy as np

    from tempo_kit.data.synthetic import write_video
    from tempo_kit.video.backends import PyAVSource, open_video

    audio = tmp_path / "talk.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(TempoKitError, match="holds audio only, no video stream; pass a video file"):
        open_video(audio)
    tiny = write_video(tmp_path / "tiny.mp4", (np.full((16, 16, 3), 10 * i, np.uint8) for i in range(6)), 5)
    with open_video(tiny, backend="decord") as source:  # decord cannot copy 16 px frames: PyAV reads them
        assert isinstance(source, PyAVSource)
        assert next(source.iter_chunks([0, 5], None, 8)).shape == (2, 16, 16, 3)


def test_a_phone_video_is_decoded_upright_whatever_the_backend(tmp_path):
    import av
    import numpy as np

    from tempo_kit.video.backends import open_video

    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:  # stored 48x32 landscape, displayed turned 90° clockwise
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(-90)
        image = np.zeros((32, 48, 3), np.uint8)
        image[:8, :8] = 255  # a mark in the stored top-left corner
        for _ in range(4):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    for backend in ("decord", "pyav"):
        with open_video(path, backend=backend) as source:
            assert (source.height, source.width) == (48, 32)
            frame = next(source.iter_chunks([0], None, 4))[0]
            marked = np.argwhere(frame[..., 0] > 128)
            assert frame.shape == (48, 32, 3) and marked.min(0).tolist() == [0, 24]  # now top-right
            assert next(source.iter_chunks([1, 3], (24, 16), 4)).shape == (2, 24, 16, 3)


def test_a_long_relevance_prompt_still_names_a_legal_results_file():
    from tempo_kit.evaluation.command import setting_name

    base = {"budget": 4096, "allocator": {"name": "ata"}, "reduction": "head", "k_min": 4, "relevance": "trained"}
    long_a, long_b = (setting_name({**base, "relevance_prompt": "Is it here? " * 40 + end}) for end in "ab")
    assert len(long_a) == 120 and long_a != long_b  # distinct prompts keep distinct files
    assert setting_name({**base, "relevance_prompt": "routing"}) == "b4096_ata_head_kmin4_trained-routing"
