"""Bad input through ``tempo-kit``: exit status 2 and one readable line naming the value and the fix.

Each case runs ``tempo_kit.cli.main`` as a user would and checks that no traceback escapes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tempo_kit.cli import INTERRUPTED, main


@pytest.fixture(scope="module")
def video(tiny_needle_benchmark):
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    return str(tiny_needle_benchmark.parent / row["video"])


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def infer(model, video, *extra: str) -> list[str]:
    return ["infer", "--model", str(model), "--video", str(video), "--query", "q", "--no-progress", *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--allocator", "atta"), r"--allocator atta: unknown allocator 'atta' \(did you mean 'ata'\?\)\. Known: "),
        (("--reduction", "hed"), r"--reduction hed: unknown reduction 'hed' \(did you mean 'head'\?\)\. Known: "),
        (
            ("--allocator", "ata:mod=exact"),
            r"--allocator ata:mod=exact: allocator 'ata' got unknown argument 'mod' \(did you mean 'mode'\?\)",
        ),
        (("--allocator", "ata:exact"), r"--allocator ata:exact: 'exact' is not key=value; write e\.g\. ata:mode=exact"),
        (  # a class without its own __init__ inherits (*args, **kwargs): checked all the same
            ("--allocator", "uniform:mode=exact"),
            r"--allocator uniform:mode=exact: allocator 'uniform' got unknown argument 'mode'\. Accepted: \(none\)\.",
        ),
        (("--budget", "-1"), r"--budget -1: .* must be ≥ 1"),
        (("--budget", "0"), r"--budget 0: .* must be ≥ 1"),
        (("--k-min", "-2"), r"--k-min -2: .* ≥ 0"),
        (("--plot", "figure.txt"), r"--plot figure\.txt: name an image file"),
        (("--fps", "0"), r"--fps 0\.0: must be > 0 frames sampled per second"),
        (("--max-frames", "0"), r"--max-frames 0: must be a positive number of frames"),
        (("--max-frames", "2"), r"--min-frames 4: .*exceeds max_frames=2"),
        (("--resize", "pil", "--backend", ""), r"--backend : .*must name a video backend"),
        (("--max-new-tokens", "0"), r"--max-new-tokens 0: the answer needs at least 1 token"),
    ],
)
def test_infer_refuses_bad_switches_before_loading_the_model(capsys, tmp_path, video, extra, message):
    # the model folder does not exist: the switch is refused first, without a slow model load
    code, err = run_cli(capsys, *infer(tmp_path / "no-model", video, *extra))
    assert code == 2
    assert err.count("\n") == 1 and re.search(message, err), err


def test_infer_empty_query_and_missing_video(capsys, tmp_path, video):
    code, err = run_cli(capsys, "infer", "--model", str(tmp_path), "--video", video, "--query", " ")
    assert code == 2 and "--query is empty" in err
    code, err = run_cli(capsys, *infer(tmp_path, tmp_path / "missing.mp4"))
    assert code == 2 and "missing.mp4: file not found" in err


def test_missing_model_folder_and_hub_id(capsys, tmp_path, video, monkeypatch):
    code, err = run_cli(capsys, *infer(tmp_path / "absent", video))
    assert code == 2 and f"model folder {tmp_path / 'absent'} does not exist" in err
    monkeypatch.chdir(tmp_path)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a hub id is fetched: never from the network here
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    code, err = run_cli(capsys, *infer("Qwen/Qwen3-4B", video))
    assert code == 2 and "model Qwen/Qwen3-4B is not in the hub cache" in err
    assert "unset HF_HUB_OFFLINE to download it" in err


def test_corrupt_video_and_image_given_as_video(capsys, tmp_path, tiny_tempo_dir, video):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(Path(video).read_bytes()[:4000])
    code, err = run_cli(capsys, *infer(tiny_tempo_dir, truncated, "--max-new-tokens", "1"))
    assert code == 2 and f"cannot open video {truncated}" in err
    assert "corrupt, truncated or not a video; re-encode it" in err and "--backend pyav" in err
    image = tmp_path / "frame.png"
    image.write_bytes(b"not a png")
    code, err = run_cli(capsys, *infer(tiny_tempo_dir, image, "--max-new-tokens", "1"))
    assert code == 2 and "it looks like an image" in err


def test_unknown_recipe_key_and_misspelt_component(capsys, tmp_path):
    recipe = "recipes/demo.yaml"
    code, err = run_cli(capsys, "fit", "--recipe", recipe, "optim.lrr=1", "--print")
    assert code == 2 and "unknown key 'optim.lrr' (did you mean 'lr'?)" in err
    code, err = run_cli(capsys, "fit", "--recipe", recipe, "model.projector.name=linaer", "--print")
    assert code == 2 and "unknown projector 'linaer' (did you mean 'linear'?). Known: " in err


def test_eval_bad_budget_and_malformed_row(capsys, tmp_path, tiny_tempo_dir, tiny_needle_benchmark):
    args = ["eval", "--model", str(tiny_tempo_dir), "--output", str(tmp_path / "out"), "--no-progress"]
    code, err = run_cli(capsys, *args, "--annotations", str(tiny_needle_benchmark), "--budget", "0,32")
    assert code == 2 and "--budget 0:" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"id": "x", "video": "v.mp4", "question": "q", "options": "AB", "answer": "A"}) + "\n"
    )
    code, err = run_cli(capsys, *args, "--annotations", str(bad))
    assert code == 2 and f"{bad} row 1 (id 'x'): 'options' must be a list" in err


def test_ctrl_c_ends_with_a_hint_not_a_traceback(capsys, monkeypatch):
    import tempo_kit.data.synthetic_command as verb

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(verb, "run", interrupted)
    code, err = run_cli(capsys, "make-synthetic", "unused")
    assert code == INTERRUPTED == 128 + signal.SIGINT
    assert err.strip() == "tempo-kit make-synthetic: interrupted."


def test_eval_interrupt_hint_says_rerun_resumes(capsys, monkeypatch):
    import tempo_kit.evaluation.command as verb

    monkeypatch.setattr(verb, "run", lambda args: (_ for _ in ()).throw(KeyboardInterrupt))
    code, err = run_cli(capsys, "eval", "--model", "m", "--annotations", "a.jsonl", "--output", "o")
    assert code == INTERRUPTED and "rerun the same command to resume" in err


def test_fit_print_needs_no_checkpoints(capsys, tmp_path):
    # the resolved recipe prints without the checkpoint folders it names existing
    assert main(["fit", "--recipe", "recipes/demo.yaml", "--print"]) == 0
    assert "name: demo" in capsys.readouterr().out


def test_convert_refuses_hub_ids_and_missing_folders(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "convert", "to-kit", "Vision-CAIR/Tempo-6B", "out", "--svlm", "svlm")
    assert code == 2 and "source Vision-CAIR/Tempo-6B: no such folder" in err
    assert "hf download Vision-CAIR/Tempo-6B --local-dir checkpoints/Tempo-6B" in err
    code, err = run_cli(capsys, "convert", "to-released", str(tmp_path / "nope"), "out")
    assert code == 2 and "no such folder; pass an existing local checkpoint folder" in err


def test_error_from_a_dataloader_worker_prints_its_message_only(capsys, monkeypatch):
    from torch._utils import ExceptionWrapper

    import tempo_kit.data.synthetic_command as verb
    from tempo_kit.errors import MediaError

    def fails_in_a_worker(args):
        try:
            raise MediaError("cannot read image broken.png; check the media root")
        except MediaError:
            ExceptionWrapper(where="in DataLoader worker process 0").reraise()

    monkeypatch.setattr(verb, "run", fails_in_a_worker)
    code, err = run_cli(capsys, "make-synthetic", "unused")
    assert code == 2
    assert err == "tempo-kit make-synthetic: error: cannot read image broken.png; check the media root\n"


def test_a_bad_row_met_again_warns_once(caplog):
    import logging

    from tempo_kit.data.skips import SkipLog

    log = SkipLog()
    with caplog.at_level(logging.WARNING, logger="tempo_kit.data"):
        for _ in range(3):
            log.add("val.jsonl:1", "broken.png", "MediaError: cannot read image broken.png")
        log.add("val.jsonl:2", "other.png", "MediaError: cannot read image other.png")
    assert caplog.text.count("skipping sample val.jsonl:1") == 1 and "val.jsonl:2" in caplog.text
    assert log.summary() == "2 samples skipped (2× MediaError); 4 skip events"


def test_a_reader_that_left_is_no_traceback(tmp_path):
    """`tempo-kit components | head -1`: the pipe closes before the listing is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tempo_kit.cli", "components"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
