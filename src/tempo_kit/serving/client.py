"""Ask a running ``tempo-kit serve`` instead of loading the model: ``chat --server`` and ``demo --server``.

The client speaks the same chat-completions JSON as any OpenAI client, over the standard library's
``urllib`` (so ``chat`` and ``demo`` need no extra package), and turns each reply's ``tempo``
record back into an :class:`~tempo_kit.inference.result.InferenceResult`: the terminal report, the
demo's table and its allocation plot then work unchanged on a remote answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError, MediaError, TempoKitError

#: Seconds to wait for one answer (the first question about a long video decodes it).
ANSWER_TIMEOUT_S = 3600.0


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--server URL``: ask a running ``tempo-kit serve`` instead of loading ``--model`` (``chat``, ``demo``)."""
    parser.add_argument("--server", default=None, help="ask a running `tempo-kit serve` at this URL instead of --model")
    parser.add_argument("--api-key", default=None, help="the server's API key (with --server)")


class ServerClient:
    """One server at ``url`` (``http://host:port``), with its API key if it needs one."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = ANSWER_TIMEOUT_S) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--server {url}: pass the server's address, e.g. http://127.0.0.1:8000")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) checked)
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = error.reason
            kind = MediaError if error.code in (403, 404, 413, 422) else ConfigError
            raise kind(f"the server answered {error.code}: {message}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ConfigError(f"--server {self.url}: cannot reach the server ({error}); is `tempo-kit serve` running?") from None

    def model(self) -> dict:
        """The served model's record (its ``id`` and ``tempo`` defaults)."""
        return self._call("GET", "/v1/models")["data"][0]

    def ask(self, video_url: str, question: str, history: Any = (), **options: Any) -> dict:
        """One chat completion about ``video_url`` after the earlier turns ``history`` (the video
        goes in the first user message); ``options`` are Tempo's extra body fields."""
        turns = [*({"role": t.role, "content": t.text} for t in history), {"role": "user", "content": question}]
        turns[0] = {"role": "user", "content": [{"type": "video_url", "video_url": {"url": video_url}},
                                                {"type": "text", "text": turns[0]["content"]}]}
        body = {"messages": turns, **{k: v for k, v in options.items() if v is not None}}
        return self._call("POST", "/v1/chat/completions", body)


def video_url(path: str | Path, upload: bool) -> str:
    """``file://`` of the absolute path (the server reads it under its media root), or the bytes
    as a ``data:`` upload (a server on another machine)."""
    path = Path(path).resolve()
    if not upload:
        return path.as_uri()
    kind = mimetypes.guess_type(path.name)[0] or "video/mp4"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def result_of(reply: dict, question: str) -> Any:
    """The :class:`~tempo_kit.inference.result.InferenceResult` a server's reply describes (its ``tempo`` record)."""
    import torch

    from tempo_kit.inference.result import InferenceResult
    from tempo_kit.types import Allocation

    tempo = reply["tempo"]
    segments = tempo["segments"]
    relevance = [s["relevance"] for s in segments]
    allocation = Allocation(
        counts=torch.tensor([s["tokens"] for s in segments], dtype=torch.long),
        relevance=None if None in relevance else torch.tensor(relevance),
        times=torch.tensor([float(s["time"]) for s in segments]),
        budget=tempo["budget"],
        k_min=tempo["k_min"],
        k_max=tempo["k_max"],
    )
    return InferenceResult(
        answer=reply["choices"][0]["message"]["content"],
        query=question,
        video=None,
        allocation=allocation,
        num_frames=tempo["num_frames"],
        duration=tempo["duration"],
        window=tempo["window"],
        timings=tempo["timings"],
        settings=tempo["settings"],
        reused=tuple(tempo["reused"]),
        svlm_tokens=tempo["svlm_tokens"],
    )


class RemoteSession:
    """A :class:`~tempo_kit.inference.session.VideoSession` look-alike whose questions go to a server."""

    def __init__(self, client: ServerClient, video: str | Path, upload: bool, reading: dict[str, Any]) -> None:
        self.client = client
        self.url = video_url(video, upload)
        self.reading = reading
        self.cached_segments = 0
        self.cache_bytes = 0

    def ask(self, question: str, **options: Any) -> Any:
        options.pop("progress", None)
        options.pop("compressor_query", None)  # the server forms it from the conversation's user turns
        reply = self.client.ask(self.url, question, **self.reading, **options)
        self.cached_segments = reply["tempo"]["cached_segments"]
        self.cache_bytes = reply["tempo"]["video_cache_bytes"]
        return result_of(reply, question)

    def close(self) -> None:
        """Nothing to free here: the server's cache keeps the video for the next client."""


class RemotePipeline:
    """What ``demo`` needs of a :class:`~tempo_kit.inference.api.TempoPipeline`: ``open``."""

    def __init__(self, client: ServerClient, upload: bool = True) -> None:
        self.client = client
        self.upload = upload

    def open(self, video: str | Path, *, sampling: Any = None, **_cache: Any) -> RemoteSession:
        """A session on the server; the cache switches are the server's own and are ignored here."""
        reading = {} if sampling is None else {k: v for k, v in sampling.to_dict().items() if v is not None}
        return RemoteSession(self.client, video, self.upload, reading)


def chat_over_server(args: argparse.Namespace) -> int:
    """``tempo-kit chat --server URL``: the same conversation, answered by the server."""
    from tempo_kit.inference.chat import Conversation, format_turn, questions, reading_of
    from tempo_kit.inference.command import question_options

    if not Path(args.video).is_file():
        raise MediaError(f"--video {args.video}: file not found; check the path")
    client = ServerClient(args.server, args.api_key)
    model = client.model()
    session = RemotePipeline(client, upload=False).open(args.video, **reading_of(args))
    interactive = sys.stdin.isatty()
    print(f"{args.video}: asking {model['id']} at {client.url}. " + ("Ask away; 'exit' ends." if interactive else ""), flush=True)
    asked = 0
    conversation = Conversation()
    for question in questions(sys.stdin, interactive):
        try:
            result = conversation.ask(session, question, **question_options(args))
        except TempoKitError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            continue
        asked += 1
        print(f"Q: {question}\n{format_turn(result)}\n", flush=True)
    print(f"{asked} questions answered; the server's cache held {session.cached_segments} segments' prefixes.", flush=True)
    return 0
