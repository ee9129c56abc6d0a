"""The server's parts without HTTP: the shared video cache (single flight, LRU under the cap), the
media rules, the request checks, stopping an answer when its client leaves, streamed pieces."""

from __future__ import annotations

import asyncio
import base64
import threading

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tempo_kit.inference.batched import RowStops
from tempo_kit.model.prompts import Turn
from tempo_kit.serving.cache import VideoCache, frames_bytes
from tempo_kit.serving.media import MediaPolicy
from tempo_kit.serving.protocol import RequestError, parse_chat_request
from tempo_kit.serving.streaming import StrippedPieces


@pytest.fixture(scope="module")
def pipeline(letter_model):
    from tempo_kit.inference.api import TempoPipeline

    return TempoPipeline.from_pretrained(letter_model)


def frames(seed: int, count: int = 16):
    return torch.randint(0, 256, (count, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_cache_opens_a_video_once_for_concurrent_requests_and_evicts_the_least_recent_idle_one(pipeline):
    opened = []

    def opener(seed):
        async def open_session():
            opened.append(seed)
            await asyncio.sleep(0.05)  # the decode others wait for
            return pipeline.open(frames=frames(seed))
        return open_session

    async def scenario():
        one = frames_bytes(pipeline.open(frames=frames(0)))
        cache = VideoCache(max_bytes=2 * one + one // 2)  # room for two videos' frames
        (a1, how1), (a2, how2) = await asyncio.gather(cache.acquire("a", opener(0)), cache.acquire("a", opener(0)))
        assert a1 is a2 and sorted([how1, how2]) == ["miss", "shared"] and opened == [0]
        assert (cache.hits, cache.misses) == (1, 1) and a1.users == 2
        cache.release(a1)
        b, _ = await cache.acquire("b", opener(1))  # a (held) and b (held): at the cap
        c, _ = await cache.acquire("c", opener(2))  # over it, but every entry is in use: none goes
        assert cache.evictions == 0 and len(cache) == 3 and not a1.session.closed
        cache.release(b)  # b is idle now, a is still held: b goes, though a is older
        assert cache.evictions == 1 and b.session.closed and not a1.session.closed and not c.session.closed
        assert cache.nbytes <= cache.max_bytes and len(cache) == 2
        cache.release(a2)
        cache.release(c)
        again, how = await cache.acquire("a", opener(0))
        assert how == "hit" and opened == [0, 1, 2] and cache.hits == 2
        cache.release(again)  # a and c both idle; the hit made a the most recent
        d, _ = await cache.acquire("d", opener(3))
        assert c.session.closed and not again.session.closed and cache.evictions == 2
        cache.release(d)
        e, _ = await cache.acquire("e", opener(4))  # a is the least recent idle entry now
        assert again.session.closed and not d.session.closed and not e.session.closed and cache.evictions == 3
        return cache

    asyncio.run(scenario())


def test_a_cache_smaller_than_one_video_is_refused_with_413(pipeline):
    async def scenario():
        cache = VideoCache(max_bytes=1000)

        async def open_session():
            return pipeline.open(frames=frames(0))

        with pytest.raises(RequestError, match="more than the server's whole video cache") as error:
            await cache.acquire("a", open_session)
        assert error.value.status == 413 and len(cache) == 0

    asyncio.run(scenario())


def test_media_rules(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "v.mp4").write_bytes(b"video")
    (outside / "s.mp4").write_bytes(b"secret")
    (root / "link.mp4").symlink_to(outside / "s.mp4")
    policy = MediaPolicy([root], tmp_path / "uploads", max_upload_bytes=16, allow_url=False)
    inside = policy.resolve(f"file://{root}/v.mp4")
    assert inside.path == (root / "v.mp4").resolve() and len(inside.sha256) == 64
    for url, status in [
        (f"file://{outside}/s.mp4", 403), (f"file://{root}/../outside/s.mp4", 403), (f"file://{root}/link.mp4", 403),
        (f"file://{root}/missing.mp4", 404), ("https://example.com/v.mp4", 403), ("ftp://x/v.mp4", 400),
        ("data:video/mp4;base64," + base64.b64encode(b"x" * 64).decode(), 413),
        ("data:image/png;base64,AAAA", 400), ("data:video/mp4;base64,@@", 400),
    ]:
        with pytest.raises(RequestError) as error:
            policy.resolve(url)
        assert error.value.status == status, url
    upload = policy.resolve("data:video/mp4;base64," + base64.b64encode(b"video").decode())
    assert upload.sha256 == inside.sha256 and upload.path.read_bytes() == b"video"


def body(**extra):
    content = [{"type": "video_url", "video_url": {"url": "file:///v.mp4"}}, {"type": "text", "text": "Why?"}]
    return {"messages": [{"role": "user", "content": content}], **extra}


def test_request_checks_and_the_conversation_the_model_reads():
    request = parse_chat_request(body(budget=32, max_tokens=5, max_frames=64, temperature=0.7), "m", 100)
    assert request.options == {"budget": 32, "max_new_tokens": 5} and request.reading == {"max_frames": 64}
    assert request.question == "Why?" and request.history == [] and request.compressor_query is None
    turns = body()
    turns["messages"] += [{"role": "assistant", "content": "B"}, {"role": "user", "content": "And then?"}]
    request = parse_chat_request(turns, "m", 100)
    assert request.history == [Turn("user", "Why?"), Turn("assistant", "B")]
    assert request.question == "And then?"
    assert request.compressor_query == "Context turn 1: Why?\nContext turn 2: And then?"
    for bad, words in [
        (body(budget=0), "budget=0"), (body(budget=True), "budget=True"), (body(k_min=-1), "k_min=-1"),
        (body(max_tokens=101), "cap of 100"), (body(allocator="atta"), "did you mean 'ata'"),
        (body(reduction="nope"), "nope"), (body(n=2), "one choice"), (body(stream="yes"), "stream"),
        ({"messages": []}, "non-empty"), (body(model="other"), "not served here"),
        (body(history=[]), "history"),  # earlier turns come as messages, not as a second field
        ({"messages": [*turns["messages"][:1], *turns["messages"][2:]]}, "must alternate"),  # user, user
    ]:
        with pytest.raises(RequestError, match=words):
            parse_chat_request(bad, "m", 100)


@given(st.lists(st.text(alphabet=" \nab", max_size=4), max_size=8))
def test_streamed_pieces_join_to_the_stripped_answer(pieces):
    out = []
    stream = StrippedPieces(out.append)
    for piece in pieces:
        stream(piece)
    assert "".join(out) == "".join(pieces).strip()
    assert all(p and not p[-1].isspace() for p in out)


@pytest.mark.slow
def test_a_cancelled_answer_stops_at_the_next_token(pipeline):
    from transformers import StoppingCriteriaList

    video = frames(3, 8)
    full = pipeline.answer(frames=video, query="Which?", max_new_tokens=12)
    cancelled = threading.Event()
    cancelled.set()
    stopped = pipeline.answer(
        frames=video, query="Which?", max_new_tokens=12, stopping_criteria=StoppingCriteriaList([RowStops([cancelled.is_set])])
    )
    assert len(full.answer) >= 12 and len(stopped.answer) < len(full.answer) and full.answer.startswith(stopped.answer)


def test_urls_are_fetched_only_when_allowed_and_under_the_size_cap(tmp_path):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "small.mp4").write_bytes(b"v" * 10)
    (tmp_path / "large.mp4").write_bytes(b"v" * 100)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
        threading.Thread(target=http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{http.server_address[1]}"
        policy = MediaPolicy([], tmp_path / "uploads", max_upload_bytes=50, allow_url=True)
        fetched = policy.resolve(f"{base}/small.mp4")
        assert fetched.path.read_bytes() == b"v" * 10 and fetched.path.suffix == ".mp4"
        for url, status in [(f"{base}/large.mp4", 413), (f"{base}/missing.mp4", 422), (f"file://{tmp_path}/small.mp4", 403)]:
            with pytest.raises(RequestError) as error:
                policy.resolve(url)
            assert error.value.status == status, url
        with pytest.raises(RequestError, match="--allow-url"):
            MediaPolicy([], tmp_path, 50, allow_url=False).resolve(f"{base}/small.mp4")
        http.shutdown()


def test_a_video_over_the_duration_limit_or_unreadable_is_refused(pipeline, tiny_needle_benchmark, tmp_path):
    import json

    from tempo_kit.serving.app import TempoServer
    from tempo_kit.serving.media import LocalVideo
    from tempo_kit.serving.settings import ServerSettings

    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    video = LocalVideo(tiny_needle_benchmark.parent / row["video"], "sha")  # 12 s
    server = TempoServer(pipeline, ServerSettings("m", upload_dir=tmp_path, max_duration_s=11.9))  # just under the video
    with pytest.raises(RequestError, match="12 s long, over this server.s limit") as error:
        server.open_video(video, pipeline.sampling())
    assert error.value.status == 413 and server.requests.decodes == 0  # refused from the header alone
    (tmp_path / "bad.mp4").write_bytes(b"junk")
    with pytest.raises(RequestError, match="could not be read") as error:
        server.open_video(LocalVideo(tmp_path / "bad.mp4", "sha2"), pipeline.sampling())
    assert error.value.status == 422
    server.worker.close()


def test_the_worker_batches_what_arrives_within_the_window_up_to_the_size():
    from tempo_kit.serving.worker import ModelWorker

    batches: list[list[str]] = []

    def run_batch(payloads):
        batches.append(list(payloads))
        return [ValueError("refused") if p == "bad" else p.upper() for p in payloads]

    async def scenario():
        worker = ModelWorker(run_batch, batch_window_s=0.5, max_batch_size=3)
        released = []
        gone = threading.Event()
        gone.set()  # its client left before the batch started

        async def one(payload, cancelled=None):
            try:
                return await worker.run(payload, cancelled or threading.Event(), lambda: released.append(payload))
            except (ValueError, asyncio.CancelledError) as error:
                return type(error).__name__

        results = await asyncio.gather(one("a"), one("b"), one("left", gone), one("bad"), one("c"))
        worker.close()
        return results, released

    results, released = asyncio.run(scenario())
    assert results == ["A", "B", "CancelledError", "ValueError", "C"]
    # the first three jobs arrived within the window (one dropped), the other two formed the next batch
    assert batches == [["a", "b"], ["bad", "c"]] and sorted(released) == ["a", "b", "bad", "c", "left"]
