"""The model worker: one thread runs every model call, a batch of questions at a time.

What is batched: the worker's thread takes the first waiting question, then waits at most
``batch_window_s`` (``--batch-window-ms``) for more, up to ``max_batch_size`` (``--max-batch-size``)
in all; questions that arrived while the model was busy are all taken at once. The batch goes to
:func:`tempo_kit.inference.batched.answer_batch`: the compressor's suffix calls of every question
(same or different videos) share forward passes within the compressor's call limits, and the
decoder generates for all of them in one left-padded batch per generation settings. A window
of a few milliseconds costs an idle server nothing it would notice next to a question's seconds,
and gives requests sent together one batch. ``--max-batch-size 1`` answers one question at a time
(the queue of earlier versions).

A second thread decodes new videos, so a video being read does not stop questions about others.
A question whose client left before its batch started is dropped; one whose client leaves while
its batch runs stops at its next generated token, without stopping the other rows
(:class:`~tempo_kit.inference.batched.RowStops`). The worker never waits on a client: streamed
text goes into an unbounded per-request queue on the event loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

#: Seconds the worker waits after a first question for others to join its batch (``--batch-window-ms``).
DEFAULT_BATCH_WINDOW_S = 0.02
#: Most questions in one batch (``--max-batch-size``): the decoder's batch; the compressor's calls
#: stay within its own ``segment_batch_size`` and ``call_token_budget`` whatever this is.
DEFAULT_MAX_BATCH_SIZE = 8


@dataclass
class Job:
    """One question waiting for the model: what to answer, and where its result goes."""

    payload: Any
    cancelled: threading.Event
    future: Future = field(default_factory=Future)


class ModelWorker:
    """Runs batches of model jobs on one thread and video decodes on another; counts what waits.

    Args:
        run_batch: ``payloads -> results``, one result (or exception) per payload, in order.
        batch_window_s: see :data:`DEFAULT_BATCH_WINDOW_S`.
        max_batch_size: see :data:`DEFAULT_MAX_BATCH_SIZE`.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], Sequence[Any]],
        batch_window_s: float = DEFAULT_BATCH_WINDOW_S,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        self.run_batch = run_batch
        self.batch_window_s = batch_window_s
        self.max_batch_size = max_batch_size
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._decode = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tempo-decode")
        self._thread = threading.Thread(target=self._loop, name="tempo-model", daemon=True)
        self._thread.start()
        self.queued = 0
        self.dropped = 0
        self.batches = 0
        self.batched_questions = 0
        self.largest_batch = 0

    async def decode(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the decode thread."""
        return await asyncio.wrap_future(self._decode.submit(fn))

    async def run(self, payload: Any, cancelled: threading.Event, on_done: Callable[[], None]) -> Any:
        """The result of ``payload`` in a batch, unless ``cancelled`` is set before its batch starts.

        ``on_done`` runs on the event loop once the job has really finished or was dropped (not
        when the awaiting request is cancelled while the job still runs), so what the job uses
        is released only when nothing touches it any more.
        """
        loop = asyncio.get_running_loop()
        job = Job(payload, cancelled)

        def finished(_: Any) -> None:
            self.queued -= 1
            on_done()

        job.future.add_done_callback(lambda f: loop.call_soon_threadsafe(finished, f))
        self.queued += 1
        self._jobs.put(job)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            cancelled.set()  # the request left: drop the job if its batch has not started
            raise

    def _loop(self) -> None:
        while (batch := self._collect()) is not None:
            live = []
            for job in batch:
                if job.cancelled.is_set():
                    self.dropped += 1
                    job.future.set_exception(asyncio.CancelledError())
                else:
                    live.append(job)
            if not live:
                continue
            self.batches += 1
            self.batched_questions += len(live)
            self.largest_batch = max(self.largest_batch, len(live))
            try:
                results = list(self.run_batch([job.payload for job in live]))
            except Exception as error:  # noqa: BLE001 - every job of the batch gets the error
                results = [error] * len(live)
            for job, result in zip(live, results):
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _collect(self) -> list[Job] | None:
        """The next batch: a first job, then what arrives within the window, up to the size; ``None``: closed."""
        first = self._jobs.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.batch_window_s
        while len(batch) < self.max_batch_size:
            left = deadline - time.monotonic()
            try:
                job = self._jobs.get(timeout=left) if left > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # close after this batch
                break
            batch.append(job)
        return batch

    def close(self) -> None:
        self._jobs.put(None)
        self._decode.shutdown(wait=False, cancel_futures=True)
