"""``tempo-kit demo``: a Gradio web app to talk with a video.

    tempo-kit demo --model DIR [--examples DIR] [--host 127.0.0.1] [--port 7860]

Upload a video (or pick one of ``--examples``), ask a question, and see the answer, the
relevance/allocation timeline (:func:`~tempo_kit.inference.plots.plot_allocation`), the time of
each phase and the SVLM tokens computed. Each browser tab keeps a
:class:`~tempo_kit.inference.session.VideoSession` for its video, so follow-up questions run only
their own tokens through the SVLM; a new video opens a new session. Needs the ``demo`` extra
(``pip install tempo-kit[demo]``).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path
from typing import Any

from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.inference.chat import PLACEHOLDER_QUERY, add_cache_arguments, cache_bytes, reading_of
from tempo_kit.inference.command import (
    add_model_arguments,
    check_budget,
    check_model_arguments,
    check_question,
)
from tempo_kit.serving.client import add_server_arguments

#: Video file endings offered from ``--examples``.
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi"})
#: Budget slider range; the model's own budget is the initial value.
BUDGET_RANGE = (1, 16384)
#: Where the app listens unless told otherwise (Gradio's port).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
#: The app's API endpoint (``gradio_client``: ``client.predict(..., api_name="/ask")``).
API_NAME = "ask"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, model_required=False)
    add_cache_arguments(parser)
    add_server_arguments(parser)
    app = parser.add_argument_group("web app")
    app.add_argument("--examples", default=None, help="folder of videos offered as examples")
    app.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})")
    app.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    app.add_argument("--budget", type=int, default=None, help="initial visual-token budget (model default)")
    app.add_argument("--share", action="store_true", help="also serve on a public gradio.live link (Gradio's share)")


def import_gradio():
    """Gradio, or a :class:`ConfigError` saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise ConfigError(
            "tempo-kit demo needs Gradio: pip install 'tempo-kit[demo]' (or pip install gradio)"
        ) from None
    return gradio


def example_videos(folder: str | Path | None) -> list[str]:
    """Video files directly inside ``folder`` (sorted), or a :class:`ConfigError` if there are none."""
    if folder is None:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--examples {folder}: not a folder; pass a folder holding video files")
    videos = sorted(str(p) for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise ConfigError(
            f"--examples {folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in this folder"
        )
    return videos


def format_stats(result, session=None) -> str:
    """Markdown table of an answer's tokens and phase timings (and the session's cache size)."""
    stats = result.token_stats()
    budget = f" of {stats['budget']}" if stats["budget"] else ""
    reused = ", ".join(result.reused) or "nothing (first question)"
    rows = [
        ("visual tokens", f"{stats['visual_tokens']}{budget} ({stats['tokens_per_frame']:.2f} per frame)"),
        ("segments kept", f"{stats['kept_segments']} / {stats['num_segments']}"),
        ("SVLM tokens", f"{result.svlm_tokens}"),
        ("reused", reused),
        *(
            [("prefix cache", f"{session.cached_segments} segments, {session.cache_bytes / 2**20:.2f} MiB")]
            if session is not None
            else []
        ),
        *((f"{phase} (s)", f"{seconds:.3f}") for phase, seconds in result.timings.items()),
    ]
    return "| this answer | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


class DemoState:
    """One browser tab's session: the video it was opened on and the questions asked so far."""

    def __init__(self) -> None:
        self.session = None
        self.video: str | None = None
        self.asked = 0


def build_app(
    pipeline: Any,
    *,
    examples: list[str] = (),
    budget: int | None = None,
    max_new_tokens: int | None = None,
    cache_device: str | None = None,
    max_cache_bytes: int | None = None,
    sampling: dict[str, Any] | None = None,
    max_context: int | None = None,
):
    """The Gradio ``Blocks`` app answering questions with ``pipeline`` (not launched)."""
    gr = import_gradio()
    # the timeline figures, removed when the app is gone or the process exits (Ctrl-C included)
    scratch = tempfile.TemporaryDirectory(prefix="tempo-demo-")
    figures = Path(scratch.name)
    lock = threading.Lock()  # one model: questions from several tabs take turns
    initial_budget = int(budget if budget is not None else pipeline.model.config.budget or BUDGET_RANGE[1])
    sampling = dict(sampling or {})
    generation = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    if max_context is not None:
        generation["max_context"] = max_context

    def respond(video: str | None, question: str, budget_value: float, history: list, state: DemoState | None):
        state = state or DemoState()
        if not video:
            raise gr.Error("Upload or pick a video first.")
        if not question or not question.strip():
            raise gr.Error("Type a question about the video.")
        with lock:
            try:
                if state.session is None or state.video != video:
                    if state.session is not None:
                        state.session.close()
                    state.session, state.video = None, None
                    state.session = pipeline.open(
                        video, cache_device=cache_device, max_cache_bytes=max_cache_bytes, **sampling
                    )
                    state.video = video
                    history = []
                result = state.session.ask(question, budget=int(budget_value), **generation)
            except TempoKitError as error:
                raise gr.Error(str(error)) from None
            state.asked += 1
            plot = result.plot(figures / f"timeline-{id(state)}-{state.asked}.png")
        history = [
            *history,
            {"role": "user", "content": question},
            {"role": "assistant", "content": result.answer or "(empty answer)"},
        ]
        return history, format_stats(result, state.session), str(plot), state, ""

    with gr.Blocks(title="Tempo: ask a video", analytics_enabled=False) as app:
        gr.Markdown(
            "## Tempo: ask a long video\nThe video is decoded and its question-independent SVLM prefix "
            "cached on the first question; follow-ups run only their own tokens."
        )
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Video", sources=["upload"], format=None, include_audio=True, height=300)
                if examples:
                    gr.Examples(examples=[[v] for v in examples], inputs=[video], label="Example videos")
                budget_slider = gr.Slider(
                    *BUDGET_RANGE, value=initial_budget, step=1, label="Visual-token budget", elem_id="budget"
                )
                timeline = gr.Image(label="Relevance and tokens per segment", type="filepath", elem_id="timeline")
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="Conversation", elem_id="conversation", height=300)
                question = gr.Textbox(label="Question", placeholder="Ask about the video", elem_id="question")
                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                stats = gr.Markdown(elem_id="stats")
        inputs = [video, question, budget_slider, chat, state]
        outputs = [chat, stats, timeline, state, question]
        ask.click(respond, inputs, outputs, api_name=API_NAME)  # the one API endpoint: /ask
        question.submit(respond, inputs, outputs, api_name=False)
    app.tempo_scratch = scratch  # lives as long as the app
    return app


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another program listens on before the model loads (Gradio would say so only
    after, with its own advice)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"--port {port}: cannot listen on {host}:{port} ({error.strerror}); another program (an earlier "
                "demo?) uses it: stop it, or pass another --port"
            ) from None


def run(args: argparse.Namespace) -> int:
    from tempo_kit.inference.api import TempoPipeline

    check_budget(args.budget)
    check_model_arguments(args)
    max_cache = cache_bytes(args)
    examples = example_videos(args.examples)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: pass a TCP port between 1 and 65535")
    check_port_free(args.host, args.port)
    if args.model is not None and not args.server:  # on the saved model config, before the model loads
        asked = {"budget": args.budget, "max_context": args.max_context, "max_new_tokens": args.max_new_tokens}
        check_question(args, PLACEHOLDER_QUERY, asked)
    import_gradio()
    if args.server:  # a running `tempo-kit serve` answers; the browser's videos are uploaded to it
        from tempo_kit.serving.client import RemotePipeline, ServerClient

        pipeline = RemotePipeline(ServerClient(args.server, args.api_key))
        args.budget = args.budget or pipeline.client.model()["tempo"]["budget"]
    elif args.model is None:
        raise ConfigError("--model DIR is needed (or --server URL to ask a running `tempo-kit serve`)")
    else:
        pipeline = TempoPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    app = build_app(
        pipeline,
        examples=examples,
        budget=args.budget,
        max_new_tokens=args.max_new_tokens,
        cache_device=args.cache_device,
        max_cache_bytes=max_cache,
        sampling=reading_of(args),
        max_context=args.max_context,
    )
    app.queue().launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        inbrowser=False,
        allowed_paths=[str(Path(v).parent) for v in examples],
    )
    return 0
