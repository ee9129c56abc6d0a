"""The video cache every request shares: one decoded video and its SVLM prefixes per key, LRU under a byte cap.

The key is the video's content hash *and* its :class:`~tempo_kit.video.reading.Sampling` (fps,
frame counts, window, geometry, resize, time base, decoder backend): everything that changes the
frames changes the key, so two readings of one file never share an entry. An entry is a
:class:`~tempo_kit.inference.session.VideoSession`, which keeps each segment's
question-independent SVLM prefix; its size is its frames plus its cached prefixes.

Concurrent requests for a key that is being opened wait for that one decode (single flight); the
first question's prefix is computed once because every model call runs on one worker, in order
(:mod:`tempo_kit.serving.worker`). An entry in use is never evicted; the least recently used idle
ones go when the total passes the cap. All state changes run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from tempo_kit.serving.protocol import RequestError


def frames_bytes(session: Any) -> int:
    """Bytes of the decoded frames a session holds (:attr:`VideoSession.frames_bytes`)."""
    return session.frames_bytes


@dataclass
class CacheEntry:
    """One cached video: its session, the bytes of its frames, and the requests using it now."""

    key: Hashable
    session: Any
    frames_bytes: int
    users: int = 0

    @property
    def nbytes(self) -> int:
        return self.frames_bytes + self.session.cache_bytes


class VideoCache:
    """LRU of :class:`CacheEntry` under ``max_bytes``, with hit, miss and eviction counts."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()
        self._opening: dict[Hashable, asyncio.Task] = {}
        self.hits = self.misses = self.evictions = 0

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    async def acquire(self, key: Hashable, open_session: Callable[[], Awaitable[Any]]) -> tuple[CacheEntry, str]:
        """The entry for ``key`` and how it was found (``hit``, ``shared`` (waited for another
        request's decode) or ``miss``); :meth:`release` it when its question is answered."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            entry.users += 1
            return entry, "hit"
        task = self._opening.get(key)
        found = "shared"
        if task is None:
            found = "miss"
            self.misses += 1
            task = asyncio.ensure_future(self._open(key, open_session))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved even if all leave
            self._opening[key] = task
        else:
            self.hits += 1
        entry = await asyncio.shield(task)  # a client leaving does not stop the decode others wait for
        entry.users += 1
        self.trim()  # after taking it: a fresh entry is never the one evicted for itself
        return entry, found

    async def _open(self, key: Hashable, open_session: Callable[[], Awaitable[Any]]) -> CacheEntry:
        try:
            session = await open_session()
            entry = CacheEntry(key, session, frames_bytes(session))
            if entry.frames_bytes > self.max_bytes:
                session.close()
                raise RequestError(
                    413,
                    f"this video's frames take {entry.frames_bytes / 2**30:.3f} GiB, more than the server's "
                    f"whole video cache (--max-cache-gb {self.max_bytes / 2**30:g}); restart the server with "
                    f"--max-cache-gb above {entry.frames_bytes / 2**30:.3f}, or ask with fewer frames (max_frames)",
                )
            self._entries[key] = entry
            return entry
        finally:
            self._opening.pop(key, None)

    def release(self, entry: CacheEntry) -> None:
        """A question on ``entry`` is done (answered, failed or cancelled); evict past the cap."""
        entry.users -= 1
        self.trim()

    def trim(self) -> None:
        """Close least recently used idle entries while the cache is over its cap."""
        total = self.nbytes
        for key in list(self._entries):
            if total <= self.max_bytes:
                return
            entry = self._entries[key]
            if entry.users == 0:
                total -= entry.nbytes
                del self._entries[key]
                entry.session.close()
                self.evictions += 1

    def close(self) -> None:
        for entry in self._entries.values():
            entry.session.close()
        self._entries.clear()
