"""``tempo-kit serve``: answer video questions over an OpenAI-compatible HTTP API.

    tempo-kit serve --model DIR --media-root VIDEOS [--port 8000] [--api-key KEY] [--max-cache-gb 16]

Every switch is checked before the model loads; the server then listens until Ctrl-C. Needs the
``serve`` extra (``pip install 'tempo-kit[serve]'``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
from pathlib import Path

from tempo_kit.errors import ConfigError
from tempo_kit.serving.settings import (
    DEFAULT_MAX_CACHE_GB,
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MAX_UPLOAD_MB,
    ServerSettings,
)
from tempo_kit.serving.worker import DEFAULT_BATCH_WINDOW_S, DEFAULT_MAX_BATCH_SIZE

#: Where the server listens unless told otherwise (loopback only: exposing it is a choice).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
#: Environment variable read for the API key when ``--api-key`` is not given (keeps it out of `ps`).
API_KEY_ENV = "TEMPO_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS

    model = parser.add_argument_group("model")
    model.add_argument("--model", required=True, help="kit-format model folder (see `tempo-kit convert`)")
    model.add_argument("--model-name", default=None, help="the id clients name in 'model' (default: the folder's name)")
    model.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    model.add_argument("--dtype", default=None, help="load SVLM and LLM in this dtype, e.g. bfloat16")
    net = parser.add_argument_group("network")
    net.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})")
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0 picks a free one)")
    net.add_argument("--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (or set ${API_KEY_ENV})")
    media = parser.add_argument_group("videos")
    media.add_argument(
        "--media-root", action="append", default=[], metavar="DIR",
        help="folder whose files file:// URLs may name (repeatable; none: file:// is refused)",
    )
    media.add_argument("--allow-url", action="store_true", help="fetch http(s):// video URLs (off by default)")
    media.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help=f"largest upload or download ({DEFAULT_MAX_UPLOAD_MB:g} MiB)")
    media.add_argument("--max-duration-s", type=float, default=DEFAULT_MAX_DURATION_S, help=f"longest video ({DEFAULT_MAX_DURATION_S:g} s)")
    cache = parser.add_argument_group("video cache")
    cache.add_argument("--max-cache-gb", type=float, default=DEFAULT_MAX_CACHE_GB, help=f"cap on cached frames and SVLM prefixes ({DEFAULT_MAX_CACHE_GB:g} GiB)")
    cache.add_argument("--cache-device", default=None, help="keep cached prefixes here, e.g. cpu (default: the model's device)")
    batching = parser.add_argument_group("batching")
    batching.add_argument(
        "--batch-window-ms", type=float, default=DEFAULT_BATCH_WINDOW_S * 1000,
        help=f"wait this long after a question for others to batch with it ({DEFAULT_BATCH_WINDOW_S * 1000:g} ms)",
    )
    batching.add_argument(
        "--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
        help=f"most questions answered together ({DEFAULT_MAX_BATCH_SIZE}; 1 answers one at a time)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help=f"cap on an answer's length ({DEFAULT_MAX_NEW_TOKENS})")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"), help="server log level")


def import_server_libraries() -> None:
    """FastAPI and uvicorn, or a :class:`ConfigError` saying how to install them."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError("tempo-kit serve needs FastAPI and uvicorn: pip install 'tempo-kit[serve]'") from None


def settings_of(args: argparse.Namespace) -> ServerSettings:
    """The checked switches; an error names the switch, its value and the fix."""
    if not Path(args.model).is_dir():
        raise ConfigError(f"--model {args.model}: not a folder; pass a kit-format model folder")
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port {args.port}: pass a TCP port between 0 and 65535")
    for flag, value in (("--max-cache-gb", args.max_cache_gb), ("--max-upload-mb", args.max_upload_mb),
                        ("--max-duration-s", args.max_duration_s)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{flag} {value}: must be a number > 0")
    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens}: must be ≥ 1")
    if not (math.isfinite(args.batch_window_ms) and args.batch_window_ms >= 0):
        raise ConfigError(f"--batch-window-ms {args.batch_window_ms}: must be a number ≥ 0")
    if args.max_batch_size < 1:
        raise ConfigError(f"--max-batch-size {args.max_batch_size}: must be ≥ 1 (1 answers one question at a time)")
    roots = []
    for root in args.media_root:
        if not Path(root).is_dir():
            raise ConfigError(f"--media-root {root}: not a folder; pass the folder holding the videos to serve")
        roots.append(Path(root).resolve())
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    return ServerSettings(
        model_id=args.model_name or Path(args.model).resolve().name,
        media_roots=roots,
        upload_dir=Path(tempfile.mkdtemp(prefix="tempo-serve-uploads-")),
        allow_url=args.allow_url,
        api_key=api_key,
        max_cache_bytes=int(args.max_cache_gb * 2**30),
        cache_device=args.cache_device,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_duration_s=args.max_duration_s,
        max_new_tokens=args.max_new_tokens,
        batch_window_s=args.batch_window_ms / 1000,
        max_batch_size=args.max_batch_size,
    )


def run(args: argparse.Namespace) -> int:
    import shutil
    import socket

    import_server_libraries()
    settings = settings_of(args)
    import uvicorn

    from tempo_kit.inference.api import TempoPipeline
    from tempo_kit.quiet import hide_library_progress
    from tempo_kit.serving.app import build_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_library_progress()
    try:
        sock = socket.create_server((args.host, args.port))  # bound before loading: a taken port fails fast
    except OSError as error:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there ({error.strerror})") from None
    pipeline = TempoPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    app = build_app(pipeline, settings)
    host, port = sock.getsockname()[:2]
    logging.getLogger("tempo_kit.serving").info(
        "serving %s on http://%s:%d (media roots: %s; URLs %s; API key %s)", settings.model_id, host, port,
        ", ".join(map(str, settings.media_roots)) or "none", "allowed" if settings.allow_url else "refused",
        "required" if settings.api_key else "not required",
    )
    print(f"tempo-kit serve: listening on http://{host}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        shutil.rmtree(settings.upload_dir, ignore_errors=True)
    return 0
