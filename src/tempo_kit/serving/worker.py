"""The model worker: one thread runs every model call, in arrival order; a slow client waits for nothing.

What is batched and what is not: requests are *queued*, not batched. Questions from many clients
share each video's decode and its question-independent SVLM prefix (the video cache), which is
where a follow-up's time goes; but each question's compressor suffix calls and its decoder pass
run alone, one question after another. Putting several questions' suffix calls and decoder rows in
one forward pass needs ``VideoSession.ask`` to take several questions (a batched ``ask_many``);
the public API answers one question per call.

A second thread decodes new videos, so a video being read does not stop questions about others.
A question whose client left before its turn is dropped; one whose client leaves while it is
answered stops at the next generated token (:mod:`tempo_kit.serving.streaming`). The worker never
waits on a client: streamed text goes into an unbounded per-request queue on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class ModelWorker:
    """Runs model jobs on one thread and video decodes on another; counts what waits."""

    def __init__(self) -> None:
        self._model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tempo-model")
        self._decode = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tempo-decode")
        self.queued = 0
        self.dropped = 0

    async def decode(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the decode thread."""
        return await asyncio.wrap_future(self._decode.submit(fn))

    async def run(self, fn: Callable[[], Any], cancelled: threading.Event, on_done: Callable[[], None]) -> Any:
        """``fn()`` on the model thread, unless ``cancelled`` is set before its turn.

        ``on_done`` runs on the event loop once the job has really finished or was dropped (not
        when the awaiting request is cancelled while the job still runs), so what the job uses
        is released only when nothing touches it any more.
        """
        loop = asyncio.get_running_loop()

        def job() -> Any:
            if cancelled.is_set():
                self.dropped += 1
                raise asyncio.CancelledError
            return fn()

        self.queued += 1
        future = self._model.submit(job)

        def finished(_: Any) -> None:
            self.queued -= 1
            on_done()

        future.add_done_callback(lambda f: loop.call_soon_threadsafe(finished, f))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancelled.set()  # the request left: drop the job if it has not started
            raise

    def close(self) -> None:
        self._model.shutdown(wait=False, cancel_futures=True)
        self._decode.shutdown(wait=False, cancel_futures=True)
