"""`tempo-kit demo` refuses bad options in one line before loading anything; its stats table."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.cli import main
from tempo_kit.inference.demo import example_videos, format_stats
from tempo_kit.inference.result import InferenceResult
from tempo_kit.types import Allocation


def run_demo(capsys, *argv: str) -> tuple[int, str]:
    code = main(["demo", "--model", "unused", *argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def test_bad_options_are_one_line_errors(capsys, tmp_path):
    missing = tmp_path / "missing"
    assert run_demo(capsys, "--examples", str(missing)) == (
        2, f"tempo-kit demo: error: --examples {missing}: not a folder; pass a folder holding video files"
    )
    (tmp_path / "notes.txt").write_text("no videos here")
    code, err = run_demo(capsys, "--examples", str(tmp_path))
    assert code == 2 and err.startswith(f"tempo-kit demo: error: --examples {tmp_path}: no video files (.avi, .mkv")
    assert run_demo(capsys, "--max-cache-gb", "-1") == (
        2, "tempo-kit demo: error: --max-cache-gb -1.0: the prefix cache cap must be > 0 GiB"
    )
    assert run_demo(capsys, "--port", "70000") == (
        2, "tempo-kit demo: error: --port 70000: pass a TCP port between 1 and 65535"
    )
    code, err = run_demo(capsys, "--budget", "0")
    assert code == 2 and err.startswith("tempo-kit demo: error: --budget 0: the budget is the number of visual tokens")


def test_example_videos_are_the_folder_s_videos_sorted(tmp_path):
    for name in ("b.mp4", "a.webm", "c.txt", "d.MOV"):
        (tmp_path / name).write_bytes(b"")
    assert example_videos(tmp_path) == [str(tmp_path / n) for n in ("a.webm", "b.mp4", "d.MOV")]
    assert example_videos(None) == []


def test_stats_table_rows():
    allocation = Allocation(torch.tensor([16, 4, 0]), torch.tensor([0.9, 0.2, 0.1]), torch.tensor([2.0, 6.0, 10.0]), 40, 4, 16)
    result = InferenceResult(
        answer="A", query="q", video="v.mp4", allocation=allocation, num_frames=24, duration=12.0, window=8,
        timings={"decode": 0.0, "compress": 0.25, "allocate": 0.001, "generate": 0.5, "total": 0.751},
        reused=("decode", "prefix"), svlm_tokens=120,
    )
    lines = format_stats(result).splitlines()
    assert lines[2:6] == [
        "| visual tokens | 20 of 40 (0.83 per frame) |",
        "| segments kept | 2 / 3 |",
        "| SVLM tokens | 120 |",
        "| reused | decode, prefix |",
    ]
    assert lines[-1] == "| total (s) | 0.751 |"


def test_app_has_one_named_endpoint_and_share_option(tiny_tempo_dir):
    pytest.importorskip("gradio")
    from tempo_kit.cli import parse_verb
    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.inference.demo import build_app

    app = build_app(TempoPipeline.from_pretrained(tiny_tempo_dir))
    names = {d.get("api_name") for d in app.config["dependencies"] if d.get("api_name")}
    assert "ask" in names and not any(str(n).startswith("respond") for n in names)
    assert parse_verb("demo", ["--model", "m", "--share"])[1].share is True
    assert parse_verb("demo", ["--model", "m"])[1].share is False
def test_a_port_in_use_is_refused_before_the_model_loads(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run_demo(capsys, "--port", str(port))
    assert code == 2 and err.startswith(f"tempo-kit demo: error: --port {port}: cannot listen on 127.0.0.1:{port} (")
    assert err.endswith("another program (an earlier demo?) uses it: stop it, or pass another --port")


def test_chat_refuses_a_question_that_is_not_utf8_and_goes_on(capsys):
    import io

    from tempo_kit.inference.chat import questions

    typed = io.BytesIO("caf\u00e9?\n".encode("latin-1") + "Caf\u00e9 au lait?\nexit\nnever read\n".encode())
    assert list(questions(typed, interactive=False)) == ["Caf\u00e9 au lait?"]
    assert "error: this question is not UTF-8 text (byte 0xe9)" in capsys.readouterr().err
