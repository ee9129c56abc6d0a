"""`tempo-kit serve`: the real server on a free port (started with the docs page's command), the
tiny letter model, talked to with the official `openai` client and raw HTTP."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")


ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
OPTIONS = {"max_tokens": 4}
#: seconds the server may take to load the tiny model and listen
START_SECONDS = 120


def docs_command() -> list[str]:
    """The `tempo-kit serve` line of docs/commands/serve.md, as words."""
    text = (ROOT / "docs" / "commands" / "serve.md").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("tempo-kit serve --model")]
    return line.split()


def start_server(words: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """Start `words` (the CLI), wait for its "listening on" line; (process, base URL)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tempo_kit.cli", *words[1:]]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env, start_new_session=True
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                return process, match.group(1)
        if process.poll() is not None:
            break
    stop(process)
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def write_long_video(path: Path, frames: int = 3, seconds_apart: int = 9000) -> None:
    """A real, tiny MPEG-4 file that lasts 5 hours: 3 frames 2.5 h apart (over the 4 h default limit)."""
    import fractions

    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        stream.time_base = fractions.Fraction(1, 1)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = index * seconds_apart, fractions.Fraction(1, 1)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def metric(server, name: str) -> float:
    text = httpx.get(f"{server['url']}/metrics", headers={"authorization": f"Bearer {KEY}"}).text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


@pytest.fixture(scope="module")
def media(tiny_needle_benchmark, tmp_path_factory):
    """A media root with two videos, an unreadable and a truncated one, and a link pointing outside."""
    rows = [json.loads(line) for line in tiny_needle_benchmark.read_text().splitlines()]
    root = tmp_path_factory.mktemp("media")
    outside = tmp_path_factory.mktemp("outside")
    videos = []
    for name, row in zip(("a.mp4", "b.mp4"), rows):
        shutil.copy(tiny_needle_benchmark.parent / row["video"], root / name)
        videos.append(root / name)
    (root / "garbage.mp4").write_bytes(b"this is not a video" * 100)
    data = videos[0].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    shutil.copy(videos[1], outside / "secret.mp4")
    (root / "link.mp4").symlink_to(outside / "secret.mp4")
    write_long_video(root / "long.mp4")
    return {"root": root, "videos": videos, "outside": outside / "secret.mp4"}


@pytest.fixture(scope="module")
def server(letter_model, media, tmp_path_factory):
    words = [
        {"MODEL_DIR": str(letter_model), "VIDEOS": str(media["root"]), "8000": "0", "KEY": KEY}.get(w, w)
        for w in docs_command()
    ]
    log = tmp_path_factory.mktemp("server") / "server.log"
    process, url = start_server(words, log)
    yield {"url": url, "log": log, "process": process}
    stop(process)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server['url']}/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def pipeline(letter_model):
    from tempo_kit.inference.api import TempoPipeline

    return TempoPipeline.from_pretrained(letter_model)


def video_part(path: Path) -> dict:
    return {"type": "video_url", "video_url": {"url": f"file://{path}"}}


def ask(client, path, question, stream=False, **extra):
    return client.chat.completions.create(
        model=client_model(client),
        messages=[{"role": "user", "content": [video_part(path), {"type": "text", "text": question}]}],
        stream=stream,
        extra_body={**OPTIONS, **extra},
    )


def client_model(client) -> str:
    return client.models.list().data[0].id


@pytest.mark.slow
def test_question_then_follow_up_reuses_the_prefix_and_streams_the_same_answer(client, pipeline, media):
    video = media["videos"][0]
    first = ask(client, video, "Where is the red circle?")
    follow = ask(client, video, "What colour is the square?")
    expected = pipeline.answer(video, "What colour is the square?", max_new_tokens=4)
    assert follow.choices[0].message.content == expected.answer and expected.answer
    assert first.tempo["prefix_reused"] is False and first.tempo["video_cache"] == "miss"
    assert follow.tempo["prefix_reused"] is True and follow.tempo["reused"] == ["decode", "prefix"]
    assert follow.tempo["svlm_tokens"] < first.tempo["svlm_tokens"]
    assert [s["tokens"] for s in follow.tempo["segments"]] == expected.allocation.counts.tolist()
    assert set(follow.tempo["timings"]) >= {"decode", "compress", "generate", "total"}

    pieces, final = [], None
    for event in ask(client, video, "What colour is the square?", stream=True):
        if event.choices and event.choices[0].delta.content:
            pieces.append(event.choices[0].delta.content)
        if event.choices and event.choices[0].finish_reason == "stop":
            final = event
    assert len(pieces) >= 2 and "".join(pieces) == expected.answer
    assert final.tempo["prefix_reused"] is True


@pytest.mark.slow
def test_a_two_turn_request_answers_as_chat_does(client, pipeline, media):
    from tempo_kit.inference.chat import Conversation

    video = media["videos"][1]
    conversation = Conversation()  # what `tempo-kit chat` runs for each line typed
    with pipeline.open(video) as session:
        first = conversation.ask(session, "Is there a circle?", max_new_tokens=4)
        second = conversation.ask(session, "Which colour is it?", max_new_tokens=4)
    assert second.settings["history"] == [{"role": "user", "text": "Is there a circle?"},
                                          {"role": "assistant", "text": first.answer}]
    messages = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": [video_part(video), {"type": "text", "text": "Is there a circle?"}]},
        {"role": "assistant", "content": first.answer},
        {"role": "user", "content": "Which colour is it?"},
    ]
    reply = client.chat.completions.create(model=client_model(client), messages=messages, extra_body=OPTIONS)
    assert reply.choices[0].message.content == second.answer
    assert [s["tokens"] for s in reply.tempo["segments"]] == second.allocation.counts.tolist()
    assert reply.tempo["settings"]["history"] == second.settings["history"]  # turns, not text in the question
    assert reply.tempo["settings"]["query"] == "Which colour is it?"
    assert reply.tempo["settings"]["compressor_query"] == "Context turn 1: Is there a circle?\nContext turn 2: Which colour is it?"
    alone = ask(client, video, "Which colour is it?")
    assert reply.usage.prompt_tokens > alone.usage.prompt_tokens  # the earlier turns are read
    # the same file read another way is another cache entry: sampling is part of the key
    fewer = ask(client, video, "Is there a circle?", max_frames=8)
    assert fewer.tempo["video_cache"] == "miss" and fewer.tempo["num_frames"] == 8
    assert fewer.tempo["video_sha256"] == reply.tempo["video_sha256"]


@pytest.mark.slow
def test_eight_concurrent_clients_on_two_videos_get_the_pipelines_answers(server, pipeline, media):
    questions = ["Where is it?", "What moves?"]
    jobs = [(media["videos"][i % 2], questions[i // 2 % 2]) for i in range(8)]  # 4 pairs, each asked twice

    def one(job):
        own = openai.OpenAI(base_url=f"{server['url']}/v1", api_key=KEY, max_retries=0, timeout=300)
        return ask(own, *job, budget=48)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, jobs))
    expected = {job: pipeline.answer(*job, budget=48, max_new_tokens=4).answer for job in set(jobs)}
    for job, reply in zip(jobs, replies):
        assert reply.choices[0].message.content == expected[job] and reply.tempo["budget"] == 48
    metrics = httpx.get(f"{server['url']}/metrics", headers={"authorization": f"Bearer {KEY}"}).text
    assert re.search(r"^tempo_video_cache_hits_total [1-9]", metrics, re.M)
    # they were answered together: some batch held several questions (about both videos)
    assert metric(server, "tempo_model_largest_batch") >= 2
    assert metric(server, "tempo_model_batch_questions_total") > metric(server, "tempo_model_batches_total")


def post(server, body, key=KEY, raw=None):
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body)
    return httpx.post(f"{server['url']}/v1/chat/completions", content=content, headers=headers, timeout=120)


def question(url, text="What is shown?", **extra):
    return {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                                       {"type": "text", "text": text}]}], **OPTIONS, **extra}


@pytest.mark.slow
def test_bad_input_gets_its_status_and_a_one_line_error_and_the_server_keeps_serving(server, media):
    good = f"file://{media['videos'][0]}"
    two = question(good)
    two["messages"][0]["content"].append({"type": "video_url", "video_url": {"url": good}})
    cases = [
        ("malformed JSON", dict(body=None, raw="{not json"), 400, "not valid JSON"),
        ("no video", dict(body={"messages": [{"role": "user", "content": "hi"}]}), 400, "no video"),
        ("two videos", dict(body=two), 400, "2 videos"),
        ("unreadable", dict(body=question(f"file://{media['root'] / 'garbage.mp4'}")), 422, "could not be read"),
        ("truncated", dict(body=question(f"file://{media['root'] / 'truncated.mp4'}")), 422, "could not be read"),
        ("outside the root", dict(body=question(f"file://{media['outside']}")), 403, "outside the media root"),
        ("dot-dot", dict(body=question(f"file://{media['root']}/../{media['outside'].parent.name}/secret.mp4")), 403, "outside"),
        ("symlink out", dict(body=question(f"file://{media['root'] / 'link.mp4'}")), 403, "outside the media root"),
        ("URL without --allow-url", dict(body=question("https://example.com/v.mp4")), 403, "--allow-url"),
        ("budget 0", dict(body=question(good, budget=0)), 400, "budget=0"),
        ("budget string", dict(body=question(good, budget="many")), 400, "budget='many'"),
        ("unknown field", dict(body=question(good, budgte=3)), 400, "did you mean 'budget'"),
        ("missing key", dict(body=question(good), key=None), 401, "API key"),
        ("wrong key", dict(body=question(good), key="nope"), 401, "API key"),
        ("bad base64", dict(body=question("data:video/mp4;base64,@@@")), 400, "base64"),
    ]
    for name, kwargs, status, words in cases:
        response = post(server, **kwargs)
        assert response.status_code == status, (name, response.text)
        assert "\n" not in response.text.strip() and "Traceback" not in response.text, name
        error = response.json()["error"]
        assert words in error["message"] and error["request_id"].startswith("req-"), (name, error)
        assert httpx.get(f"{server['url']}/health").json()["status"] == "ok", name
    # a video over the duration limit is refused from its header: no decode starts
    decodes = metric(server, "tempo_video_decodes_total")
    response = post(server, question(f"file://{media['root'] / 'long.mp4'}"))
    assert response.status_code == 413 and "18001 s long, over this server's limit of 14400 s" in response.text
    assert metric(server, "tempo_video_decodes_total") == decodes
    # an upload of the same video is the same cache entry's content
    encoded = base64.b64encode(media["videos"][0].read_bytes()).decode()
    uploaded = post(server, question(f"data:video/mp4;base64,{encoded}"))
    assert uploaded.status_code == 200 and uploaded.json()["tempo"]["video_sha256"]
    assert "Traceback" not in server["log"].read_text()  # a refused request is no bug: no traceback anywhere


@pytest.mark.slow
def test_a_client_that_leaves_mid_stream_does_not_stop_the_server(server, media):
    body = question(f"file://{media['videos'][1]}", stream=True, max_tokens=64)
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    with httpx.stream("POST", f"{server['url']}/v1/chat/completions", json=body, headers=headers, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content": "' in line and '"role"' not in line:
                break  # leave after the first piece of text
    after = post(server, question(f"file://{media['videos'][1]}"))
    assert after.status_code == 200 and after.json()["tempo"]["prefix_reused"] is True


@pytest.mark.slow
def test_a_cache_smaller_than_one_video_is_a_clear_error(letter_model, media, tmp_path):
    words = ["tempo-kit", "serve", "--model", str(letter_model), "--media-root", str(media["root"]),
             "--port", "0", "--max-cache-gb", "0.0001", "--max-upload-mb", "0.005"]
    process, url = start_server(words, tmp_path / "log")
    try:
        response = httpx.post(f"{url}/v1/chat/completions", json=question(f"file://{media['videos'][0]}"), timeout=120)
        assert response.status_code == 413
        message = response.json()["error"]["message"]
        assert "--max-cache-gb" in message and "more than the server's whole video cache" in message
        assert httpx.get(f"{url}/health").status_code == 200
        upload = "data:video/mp4;base64," + base64.b64encode(media["videos"][0].read_bytes()).decode()
        too_large = httpx.post(f"{url}/v1/chat/completions", json=question(upload), timeout=120)
        assert too_large.status_code == 413 and "--max-upload-mb" in too_large.json()["error"]["message"]
    finally:
        stop(process)


def test_start_refuses_bad_switches_before_loading(tmp_path, capsys):
    from tempo_kit.cli import main

    assert main(["serve", "--model", str(tmp_path), "--max-cache-gb", "0"]) == 2
    assert main(["serve", "--model", str(tmp_path), "--media-root", str(tmp_path / "none")]) == 2
    assert main(["chat", "--video", str(tmp_path / "v.mp4")]) == 2  # neither --model nor --server
    (tmp_path / "v.mp4").write_bytes(b"")
    assert main(["chat", "--server", "localhost:1", "--video", str(tmp_path / "v.mp4")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        "tempo-kit serve: error: --max-cache-gb 0.0: must be a number > 0",
        f"tempo-kit serve: error: --media-root {tmp_path / 'none'}: not a folder; pass the folder holding the videos to serve",
        "tempo-kit chat: error: --model DIR is needed (or --server URL to ask a running `tempo-kit serve`)",
        "tempo-kit chat: error: --server localhost:1: pass the server's address, e.g. http://127.0.0.1:8000",
    ]


@pytest.mark.slow
def test_chat_and_demo_ask_a_running_server(server, pipeline, media, tmp_path):
    from tempo_kit.inference.demo import format_stats
    from tempo_kit.serving.client import RemotePipeline, ServerClient
    from tempo_kit.video.reading import Sampling

    video = media["videos"][0]
    expected = pipeline.answer(video, "Where is the red circle?", max_new_tokens=4)
    chat = subprocess.run(
        [sys.executable, "-m", "tempo_kit.cli", "chat", "--server", server["url"], "--api-key", KEY,
         "--video", str(video), "--max-new-tokens", "4", "--no-progress"],
        input="Where is the red circle?\nWhat moves?\nexit\n", capture_output=True, text=True, timeout=300,
    )
    assert chat.returncode == 0, chat.stderr
    assert f"Q: Where is the red circle?\nAnswer: {expected.answer}\n" in chat.stdout
    assert "reused: decode, prefix" in chat.stdout and "2 questions answered" in chat.stdout

    # what `demo --server` runs for each question: an uploaded video, a result the table and plot take
    session = RemotePipeline(ServerClient(server["url"], KEY)).open(video, sampling=Sampling.inference())
    result = session.ask("Where is the red circle?", budget=48, max_new_tokens=4, progress=True)
    local = pipeline.answer(video, "Where is the red circle?", budget=48, max_new_tokens=4)
    assert result.answer == local.answer and result.allocation.counts.tolist() == local.allocation.counts.tolist()
    assert "| SVLM tokens |" in format_stats(result, session) and session.cached_segments == 3
    assert result.plot(tmp_path / "timeline.png").stat().st_size > 0
    with pytest.raises(Exception, match="the server answered 401"):
        RemotePipeline(ServerClient(server["url"], "wrong")).open(video).ask("Where?")
