"""``tempo-kit chat``: a terminal conversation about one video.

    tempo-kit chat --model DIR --video FILE [--budget 4096] [--cache-device cpu]

The video is decoded once; each question typed (one per line; ``exit``, ``quit`` or end of input
stops) is answered through a :class:`~tempo_kit.inference.session.VideoSession`, so follow-ups
reuse every segment's cached SVLM prefix. It is one conversation (:class:`Conversation`): the
decoder reads the earlier questions and answers as chat turns, and the compressor is conditioned
on all questions so far in the released multi-turn form (``Context turn 1: …``). After each answer come its tokens, the SVLM tokens
computed for it and the time of each phase. A question that fails (an impossible budget, say)
prints its error and the conversation goes on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from tempo_kit.errors import ConfigError, MediaError, TempoKitError
from tempo_kit.inference.command import (
    add_allocation_arguments,
    add_model_arguments,
    check_budget,
    check_model_arguments,
    check_question,
    format_result,
    question_options,
)
from tempo_kit.serving.client import add_server_arguments

#: Words that end the conversation.
EXIT_WORDS = frozenset({"exit", "quit"})
#: The query the settings are checked with before the model loads (the questions come later).
PLACEHOLDER_QUERY = "?"
#: Prompt shown before each question on a terminal (nothing is shown when input is piped).
PROMPT = "question> "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, help="video file")
    add_model_arguments(parser, model_required=False)
    add_allocation_arguments(parser)
    add_cache_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_server_arguments(parser)


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a session keeps its prefix cache and how large it may grow (shared with ``demo``)."""
    from tempo_kit.inference.session import DEFAULT_MAX_CACHE_BYTES

    group = parser.add_argument_group("prefix cache")
    group.add_argument(
        "--cache-device", default=None, help="keep cached prefixes here, e.g. cpu (default: the model's device)"
    )
    group.add_argument(
        "--max-cache-gb",
        type=float,
        default=DEFAULT_MAX_CACHE_BYTES / 2**30,
        help=f"cap on the cached prefixes in GiB (default {DEFAULT_MAX_CACHE_BYTES / 2**30:g})",
    )


def reading_of(args: argparse.Namespace) -> dict:
    """How to read the video, from the sampling options (``TempoPipeline.open``'s arguments)."""
    from tempo_kit.inference.command import sampling_of

    return {"sampling": sampling_of(args)}


def cache_bytes(args: argparse.Namespace) -> int:
    """``--max-cache-gb`` in bytes, refused when not positive."""
    if not args.max_cache_gb > 0:
        raise ConfigError(f"--max-cache-gb {args.max_cache_gb}: the prefix cache cap must be > 0 GiB")
    return int(args.max_cache_gb * 2**30)


def questions(stream, interactive: bool) -> Iterator[str]:
    """Stripped non-empty lines of ``stream`` until end of input or an exit word.

    A byte stream's lines are read as UTF-8; a line in another encoding (latin-1 from a pipe) is
    refused with one line and the chat goes on, rather than reaching the tokenizer garbled."""
    while True:
        if interactive:
            print(PROMPT, end="", flush=True)
        line = stream.readline()
        if not line:
            return
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as error:
                print(
                    f"error: this question is not UTF-8 text (byte 0x{line[error.start]:02x}); "
                    "type it again, or re-encode the input (e.g. iconv -f latin1 -t utf-8)",
                    file=sys.stderr,
                    flush=True,
                )
                continue
        text = line.strip()
        if text.lower() in EXIT_WORDS:
            return
        if text:
            yield text


class Conversation:
    """The turns so far of one chat: each question is asked after them, then joins them.

    The decoder gets the earlier turns as chat turns (``history``); the compressor's query is
    every user turn in the released multi-turn form
    (:func:`~tempo_kit.model.prompts.compressor_query`). A question that fails leaves no turn.
    """

    def __init__(self) -> None:
        self.turns: list = []

    def ask(self, session, question: str, **options):
        from tempo_kit.model.prompts import Turn, compressor_query

        if self.turns:
            users = [t for t in self.turns if t.role == "user"]
            options = {**options, "history": tuple(self.turns),
                       "compressor_query": compressor_query([*users, Turn("user", question)])}
        result = session.ask(question, **options)
        self.turns += [Turn("user", question), Turn("assistant", result.answer)]
        return result


def format_turn(result) -> str:
    """An answer's report plus what the session saved (SVLM tokens, cached prefixes)."""
    reused = ", ".join(result.reused) if result.reused else "nothing (first question)"
    return f"{format_result(result)}\nSVLM tokens: {result.svlm_tokens} · reused: {reused}"


def run(args: argparse.Namespace) -> int:
    from tempo_kit.inference.api import TempoPipeline

    if args.server:
        from tempo_kit.serving.client import chat_over_server

        return chat_over_server(args)
    if args.model is None:
        raise ConfigError("--model DIR is needed (or --server URL to ask a running `tempo-kit serve`)")
    if not Path(args.video).is_file():
        raise MediaError(f"--video {args.video}: file not found; check the path")
    check_budget(args.budget, args.k_min)
    check_model_arguments(args)
    if args.relevance != "trained":
        raise ConfigError(
            f"--relevance {args.relevance}: a chat reads relevance from the model's own SVLM (the cached "
            "pass); use `tempo-kit infer --relevance base` for the base SVLM's prior"
        )
    max_cache = cache_bytes(args)
    check_question(args, PLACEHOLDER_QUERY)  # on the saved model config, before the model loads
    if args.no_progress:
        from tempo_kit.quiet import hide_library_progress

        hide_library_progress()
    pipeline = TempoPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    session = pipeline.open(
        args.video,
        cache_device=args.cache_device,
        max_cache_bytes=max_cache,
        progress=not args.no_progress,
        **reading_of(args),
    )
    interactive = sys.stdin.isatty()
    print(
        f"{session.video}: {session.num_frames} frames, {len(session.segments)} segments. "
        + ("Ask away; 'exit' ends." if interactive else ""),
        flush=True,
    )
    conversation = Conversation()
    with session:
        for question in questions(sys.stdin.buffer, interactive):
            try:
                result = conversation.ask(session, question, progress=not args.no_progress, **question_options(args))
            except TempoKitError as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
                continue
            print(f"Q: {question}\n{format_turn(result)}\n", flush=True)
        cached = f"{session.cached_segments}/{len(session.segments)} segments, {session.cache_bytes / 2**20:.1f} MiB"
        print(f"{session.questions} questions answered; prefix cache held {cached}.", flush=True)
    return 0
