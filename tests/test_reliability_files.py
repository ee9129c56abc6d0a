"""Fault suite, files: atomic writes, full disks, damaged model folders, bad output paths, locks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tempo_kit.atomic import atomic_file, atomic_folder, check_output_path, write_text
from tempo_kit.errors import CheckpointError, OutputError
from tempo_kit.model import TempoModel
from tempo_kit.run_lock import run_lock


def partials(folder):
    return [p.name for p in folder.rglob("*") if ".partial-" in p.name]


def test_a_failed_write_keeps_the_previous_file_and_leaves_nothing_beside_it(tmp_path):
    target = write_text(tmp_path / "summary.json", "old")
    with pytest.raises(RuntimeError), atomic_file(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old" and partials(tmp_path) == []
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "model", replace=True) as partial:
        (partial / "weights").write_text("half")
        raise RuntimeError("killed midway")
    assert not (tmp_path / "model").exists() and partials(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / ("q" * 300 + ".png"), r"is 304 bytes, over the 255 a file system accepts"),
        (lambda root: write_text(root / "file", "x") / "plot.png", r"is a file, not a folder"),
    ],
)
def test_output_paths_that_cannot_be_written_are_refused_first(tmp_path, make, message):
    with pytest.raises(OutputError, match=message):
        check_output_path(make(tmp_path), what="--plot")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_first(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(OutputError, match="is not writable"):
        check_output_path(tmp_path / "ro" / "out", what="--output")


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from tempo_kit.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def test_full_disk_during_conversion_is_one_line_and_leaves_no_folder(tiny_tempo_dir, tmp_path):
    out = tmp_path / "released"
    command = [sys.executable, "-c", FULL_DISK, "20000", "convert", "to-released", str(tiny_tempo_dir), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tempo-kit convert: error: cannot write") and "File too large" in last
    assert "Traceback" not in done.stderr
    assert not out.exists() and partials(tmp_path) == []


def test_full_disk_during_a_checkpoint_save_keeps_the_previous_checkpoint(tmp_path):
    script = textwrap.dedent(
        """
        import resource, signal, sys, torch
        from tempo_kit.training.resume import AtomicCheckpointIO
        io = AtomicCheckpointIO()
        io.save_checkpoint({"step": 1}, sys.argv[1])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            io.save_checkpoint({"step": 2, "big": torch.zeros(100000)}, sys.argv[1])
        except Exception as error:
            print(type(error).__name__, error)
        """
    )
    path = tmp_path / "last.ckpt"
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith(f"OutputError cannot write {path}: File too large"), done.stdout + done.stderr
    import torch

    assert torch.load(path)["step"] == 1 and partials(tmp_path) == []


@pytest.fixture
def model_copy(tiny_tempo_dir, tmp_path):
    return shutil.copytree(tiny_tempo_dir, tmp_path / "model")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m: (m / "projector" / "state_dict.safetensors").unlink(), r"incomplete: projector/state_dict"),
        (lambda m: os.truncate(m / "decoder" / "model.safetensors", 100), r"has 100 bytes but was saved with"),
        (lambda m: _flip_byte(m / "compressor" / "state_dict.safetensors"), r"does not match the checksum"),
    ],
)
def test_damaged_model_folders_are_refused_naming_the_file(model_copy, damage, message):
    damage(model_copy)
    with pytest.raises(CheckpointError, match=message):
        TempoModel.from_pretrained(model_copy)


def test_without_a_manifest_a_missing_or_truncated_component_is_still_refused(model_copy):
    (model_copy / "manifest.json").unlink()
    projector = model_copy / "projector" / "state_dict.safetensors"
    os.truncate(projector, 50)
    with pytest.raises(CheckpointError, match=r"state_dict.safetensors cannot be read .* truncated or damaged"):
        TempoModel.from_pretrained(model_copy)
    projector.unlink()  # never a projector left at its random initialisation
    with pytest.raises(CheckpointError, match=r"state_dict.safetensors is missing: the projector .* incomplete"):
        TempoModel.from_pretrained(model_copy)


@pytest.mark.parametrize("load_weights", [True, False])
def test_without_a_manifest_a_compressor_without_its_memory_tokens_is_refused(model_copy, load_weights):
    """The compressor's SVLM weights are all there, but its memory tokens are not: they are never
    drawn afresh (infer/eval/convert load eagerly; run.init_from under FSDP loads later)."""
    (model_copy / "manifest.json").unlink()
    (model_copy / "compressor" / "state_dict.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"compressor/state_dict.safetensors is missing: the compressor"):
        TempoModel.from_pretrained(model_copy, load_weights=load_weights).load_initial_weights()


def _flip_byte(path, offset=-10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_convert_refuses_an_existing_folder_and_its_own_source(tiny_tempo_dir, tmp_path, capsys):
    from tempo_kit.cli import main

    (tmp_path / "taken").mkdir()
    for out, message in (
        (tmp_path / "taken", "already exists; convert into a new folder"),
        (tiny_tempo_dir, "already exists"),
        (tiny_tempo_dir / "inside", "overlaps the source"),
    ):
        assert main(["convert", "to-released", str(tiny_tempo_dir), str(out)]) == 2
        assert message in capsys.readouterr().err
    assert TempoModel.from_pretrained(tiny_tempo_dir) is not None  # the source is untouched


def test_a_second_command_on_a_locked_output_is_refused(tmp_path):
    with run_lock(tmp_path, "eval"):
        script = "from tempo_kit.run_lock import run_lock; import sys\nwith run_lock(sys.argv[1], 'eval'): pass"
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
        assert f"{tmp_path} is in use by `tempo-kit eval` (pid {os.getpid()})" in done.stderr
    with run_lock(tmp_path, "eval"):  # released when its holder ends
        pass


def _kill_when(command, ready, timeout=600) -> bool:
    """Start ``command`` and SIGKILL it once ``ready()`` holds: ``True``; ``False`` when it ended first."""
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not ready():
        if process.poll() is not None:
            return False
        assert time.time() < deadline
        time.sleep(0.005)
    process.kill()
    process.wait()
    return True


CLI = [sys.executable, "-m", "tempo_kit.cli"]


@pytest.mark.slow
def test_kill_9_during_convert_leaves_no_folder_and_a_rerun_converts(tiny_tempo_dir, tmp_path):
    out = tmp_path / "released"
    command = [*CLI, "convert", "to-released", str(tiny_tempo_dir), str(out), "--no-progress"]
    for _ in range(5):  # the tiny model's partial folder lives briefly: kill until a kill lands in it
        if _kill_when(command, lambda: bool(partials(tmp_path))):
            break
        shutil.rmtree(out)  # it finished first: convert again
    else:
        pytest.fail("convert finished five times before its partial folder was seen")
    assert not out.exists()  # never a half-written folder under the real name
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file() and partials(tmp_path) == []


@pytest.mark.slow
def test_kill_9_during_eval_then_rerun_finishes_and_all_failed_exits_1(tiny_tempo_dir, tiny_needle_benchmark, tmp_path):
    import json

    out = tmp_path / "eval"
    command = [*CLI, "eval", "--model", str(tiny_tempo_dir), "--annotations", str(tiny_needle_benchmark),
               "--output", str(out), "--max-new-tokens", "1", "--no-progress"]  # fmt: skip
    _kill_when(command, lambda: any(p.stat().st_size for p in out.glob("*.jsonl")))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (results,) = out.glob("*.jsonl")
    ids = {json.loads(line)["id"] for line in results.read_text().splitlines()}
    assert len(ids) == 4 and json.loads((out / "summary.json").read_text())["settings"]

    missing = tmp_path / "missing.jsonl"
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()]
    missing.write_text("".join(json.dumps({**row, "video": "gone.mp4"}) + "\n" for row in rows[:2]))
    # missing videos stop the run by default (exit 2, listing them); counted as wrong, every
    # question fails and the run exits 1
    failed = subprocess.run([*command[:7], str(missing), "--output", str(tmp_path / "failed"), *command[10:],
                             "--missing-video", "count"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert failed.returncode == 1 and "every question failed" in failed.stdout, failed.stderr
