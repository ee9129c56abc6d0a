"""The HTTP routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``, ``GET /metrics``.

One question goes: check the body (:mod:`~tempo_kit.serving.protocol`) → find the video under the
server's rules (:mod:`~tempo_kit.serving.media`) → take its session from the shared cache, or open
it once for everyone waiting (:mod:`~tempo_kit.serving.cache`; a video over the duration limit is
refused from its container's header, before a frame is decoded) → resolve the question's
settings → answered in a batch with other questions on the model worker
(:mod:`~tempo_kit.serving.worker`, :mod:`~tempo_kit.inference.batched`) → a chat completion with a
``tempo`` record, or its chunks as server-sent events. A refused request gets its 4xx and a one-line JSON error; anything
unexpected gets 500 with a request id, the traceback going to the server log only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tempo_kit.errors import ConfigError, MediaError, TempoKitError
from tempo_kit.inference.batched import Ask, answer_batch
from tempo_kit.serving.cache import VideoCache
from tempo_kit.serving.media import LocalVideo, MediaPolicy, container_duration
from tempo_kit.serving.metrics import RequestCounters, prometheus_text
from tempo_kit.serving.protocol import ChatRequest, RequestError, parse_chat_request
from tempo_kit.serving.responses import (
    STREAM_END,
    chunk,
    completion,
    error_body,
    jsonable,
    tempo_record,
    usage,
)
from tempo_kit.serving.settings import ServerSettings
from tempo_kit.serving.streaming import PieceStreamer
from tempo_kit.serving.worker import ModelWorker

logger = logging.getLogger("tempo_kit.serving")


class TempoServer:
    """The state one server holds: the pipeline, the media rules, the video cache, the worker."""

    def __init__(self, pipeline: Any, settings: ServerSettings) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.media = MediaPolicy(settings.media_roots, settings.upload_dir, settings.max_upload_bytes, settings.allow_url)
        self.cache = VideoCache(settings.max_cache_bytes)
        self.worker = ModelWorker(self.answer_batch, settings.batch_window_s, settings.max_batch_size)
        self.requests = RequestCounters()
        self.tokenizer = pipeline.model.tokenizer

    # ------------------------------------------------------------------------------ a question
    async def prepare(self, body: Any) -> tuple[ChatRequest, LocalVideo, Any, str]:
        """Check the request, find its video and take its cache entry (the caller releases it)."""
        request = parse_chat_request(body, self.settings.model_id, self.settings.max_new_tokens)
        try:
            sampling = self.pipeline.sampling(None, **request.reading)
        except ConfigError as error:
            raise RequestError(400, str(error)) from None
        video = await asyncio.to_thread(self.media.resolve, request.video_url)

        async def open_session() -> Any:
            return await self.worker.decode(lambda: self.open_video(video, sampling))

        entry, found = await self.cache.acquire((video.sha256, sampling), open_session)
        return request, video, entry, found

    def open_video(self, video: LocalVideo, sampling: Any) -> Any:
        """Decode ``video`` into a session (decode thread); an unreadable or too long video is refused,
        the length read from the container's header before any frame is decoded."""
        duration = container_duration(video.path)
        if duration is not None and duration > self.settings.max_duration_s:
            raise RequestError(413, self.too_long(duration))
        self.requests.decodes += 1
        try:
            session = self.pipeline.open(
                video.path,
                sampling=sampling,
                cache_device=self.settings.cache_device,
                max_cache_bytes=self.settings.max_cache_bytes,
            )
        except MediaError as error:
            raise RequestError(422, f"the video could not be read: {error}") from None
        if session.duration is not None and session.duration > self.settings.max_duration_s:
            session.close()  # a header that understated the length
            raise RequestError(413, self.too_long(session.duration))
        return session

    def too_long(self, duration: float) -> str:
        return (
            f"the video is {duration:.0f} s long, over this server's limit of "
            f"{self.settings.max_duration_s:.0f} s (--max-duration-s)"
        )

    def asked(self, entry: Any, request: ChatRequest, cancelled: threading.Event) -> Ask:
        """The question of ``request`` about ``entry``'s video, its settings checked (a 400 here)."""
        session = entry.session
        try:
            question = self.pipeline.question(
                request.question,
                compressor_query=request.compressor_query,
                history=request.history,
                sampling=session.sampling,
                **request.options,
            )
        except ConfigError as error:
            raise RequestError(400, str(error)) from None
        return Ask(session, question, stop=cancelled.is_set)

    def answer_batch(self, asks: list[Ask]) -> list[Any]:
        """Answer a batch on the model thread; a refused option is a 400, unusable frames a 422."""
        results = answer_batch(self.pipeline, asks)
        return [
            RequestError(400 if isinstance(r, ConfigError) else 422, str(r))
            if isinstance(r, TempoKitError) and not isinstance(r, RequestError)
            else r
            for r in results
        ]

    def finish(
        self, request: ChatRequest, result: Any, found: str, video: LocalVideo, entry: Any, started: float
    ) -> tuple[dict, dict]:
        """(the ``tempo`` record, the usage) of an answer; counts it."""
        self.requests.answered += 1
        self.requests.prefix_reused += "prefix" in result.reused
        self.requests.latency_sum += time.perf_counter() - started
        text = "\n".join([*(turn.text for turn in request.history), request.question])
        prompt = result.tokens_used + len(self.tokenizer(text)["input_ids"])
        answer_tokens = len(self.tokenizer(result.answer, add_special_tokens=False)["input_ids"])
        return tempo_record(result, found, video.sha256, entry), usage(prompt, answer_tokens)


def build_app(pipeline: Any, settings: ServerSettings) -> FastAPI:
    """The FastAPI app serving ``pipeline`` under ``settings`` (run it with uvicorn)."""
    server = TempoServer(pipeline, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        server.worker.close()
        server.cache.close()

    app = FastAPI(title="tempo-kit serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.server = server

    def refuse(status: int, message: str, request_id: str) -> JSONResponse:
        logger.info("%s refused (%d): %s", request_id, status, message)
        return JSONResponse(error_body(status, message, request_id), status_code=status, headers={"x-request-id": request_id})

    def authorized(request: Request) -> bool:
        if settings.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode())

    @app.middleware("http")
    async def guard(request: Request, call_next):
        request_id = f"req-{uuid.uuid4().hex[:16]}"
        request.state.request_id = request_id
        if request.url.path != "/health" and not authorized(request):
            return refuse(401, "missing or wrong API key; send the header 'Authorization: Bearer <key>'", request_id)
        try:
            response = await call_next(request)
        except Exception:  # a bug: the traceback goes to the log, the client gets the request id
            logger.exception("%s failed", request_id)
            server.requests.by_status[500] += 1
            return refuse(500, f"internal error; the server log has the details under {request_id}", request_id)
        response.headers["x-request-id"] = request_id
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return refuse(error.status_code, str(error.detail), request.state.request_id)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": settings.model_id}

    @app.get("/v1/models")
    async def models():
        config = pipeline.model.config
        defaults = {"budget": config.budget, "k_min": config.k_min, "allocator": jsonable(config.allocator)}
        return {
            "object": "list",
            "data": [{"id": settings.model_id, "object": "model", "created": 0, "owned_by": "tempo-kit", "tempo": defaults}],
        }

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(prometheus_text(server.requests, server.cache, server.worker))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        request_id = request.state.request_id
        started = time.perf_counter()
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > settings.max_body_bytes:
            return answered(refuse(413, f"the request body is {int(size) / 2**20:.1f} MiB, over this server's "
                                        f"limit of {settings.max_body_bytes / 2**20:.1f} MiB (--max-upload-mb)", request_id))
        try:
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise RequestError(400, f"the request body is not valid JSON ({error})") from None
            chat, video, entry, found = await server.prepare(body)
        except RequestError as error:
            return answered(refuse(error.status, str(error), request_id))
        cancelled = threading.Event()
        release = lambda: server.cache.release(entry)  # noqa: E731 - once the model thread is done with it
        try:
            ask = server.asked(entry, chat, cancelled)  # its settings checked before it waits for a batch
        except RequestError as error:
            release()
            return answered(refuse(error.status, str(error), request_id))
        if chat.stream:
            return answered(StreamingResponse(
                stream(chat, ask, video, entry, found, cancelled, release, request_id, started),
                media_type="text/event-stream",
                headers={"x-request-id": request_id, "cache-control": "no-cache"},
            ))
        try:
            result = await server.worker.run(ask, cancelled, release)
        except RequestError as error:
            return answered(refuse(error.status, str(error), request_id))
        tempo, tokens = server.finish(chat, result, found, video, entry, started)
        return answered(JSONResponse(completion(request_id, settings.model_id, result.answer, tempo, tokens)))

    def answered(response):
        server.requests.by_status[response.status_code] += 1
        return response

    async def stream(chat, ask, video, entry, found, cancelled, release, request_id, started):
        """Server-sent events: the role, each text piece as generated, then the ``tempo`` record."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        done = object()
        ask.streamer = PieceStreamer(server.tokenizer, lambda text: loop.call_soon_threadsafe(pieces.put_nowait, text))
        job = asyncio.ensure_future(server.worker.run(ask, cancelled, release))
        job.add_done_callback(lambda _: pieces.put_nowait(done))
        model = settings.model_id
        try:
            yield chunk(request_id, model, {"role": "assistant", "content": ""})
            while (piece := await pieces.get()) is not done:
                yield chunk(request_id, model, {"content": piece})
            try:
                result = job.result()
            except RequestError as error:
                yield f"data: {json.dumps(error_body(error.status, str(error), request_id))}\n\n"
                return
            except Exception:
                logger.exception("%s failed while streaming", request_id)
                yield f"data: {json.dumps(error_body(500, f'internal error; see the server log under {request_id}', request_id))}\n\n"
                return
            tempo, tokens = server.finish(chat, result, found, video, entry, started)
            yield chunk(request_id, model, {}, "stop", usage=tokens, tempo=tempo)
            yield STREAM_END
        finally:
            cancelled.set()  # a client that left stops the answer at its next token
            if not job.done():
                job.add_done_callback(lambda j: j.cancelled() or j.exception())

    return app
