"""Decode ahead while the compressor works: one video streamed through the SVLM chunk by chunk.

The serial pipeline decodes the whole video, then compresses it: the accelerator waits for the
decoder, and host memory holds every sampled frame. Here a background thread decodes and resizes
the next chunks of segments (``chunk_segments`` windows at a time, at most ``prefetch`` chunks
ahead) while the caller compresses the current one, as QuickVideo overlaps decoding with
inference. Frames become patches on the model's device inside the compressor.

The video is read in **one sequential pass** (``decode_frames(..., stream=True)``), regrouped into
chunks as frames arrive: PyAV never restarts from the first frame, and decord rewinds after each
batch so its frame buffers do not grow with the video. At most ``prefetch + 2`` chunks of decoded
frames are held, whatever the video's length; the returned segments keep their time tags and
lengths but no frames. Peak host memory is flat in the video's length
(``benchmarks/results/overlap_cpu.md``; ``tests/test_overlap.py`` holds it for 384 and 1536 frames).

Segments are compressed independently, so the memory and relevance equal the serial path's;
:class:`~tempo_kit.inference.sources.StreamedSource` cuts chunks along the serial path's own
compressor calls (whole calls under a ``call_token_budget`` too), so every call holds the same
segments as well.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tempo_kit.errors import MediaError
from tempo_kit.model.compression import join_calls
from tempo_kit.moved import moved_names
from tempo_kit.types import CompressorOutput, Segments
from tempo_kit.video.reading import Sampling

#: Decoded chunks waiting for the compressor at most (bounds host memory with the chunk size).
DEFAULT_PREFETCH = 2
#: Micro-batches of the compressor per decoded chunk.
CHUNK_MICRO_BATCHES = 2


class Prefetch:
    """Iterates ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception in the producer is raised in the consumer; leaving the loop early (or an error
    there) stops the producer and closes ``items``.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = DEFAULT_PREFETCH) -> None:
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, got {depth}")
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="tempo-kit-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    break
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failure(error))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
            self._put(self._END)

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._queue.get()
                if item is self._END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the producer and wait for it (it finishes the chunk it is decoding)."""
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException


def stream_segments(
    path: str | Path, sampling: Sampling, chunk_segments: int | Callable[[Segments], Sequence[int]]
) -> tuple[Segments, Iterator[Segments], dict[str, Any]]:
    """The video's frameless segments, an iterator of its decoded chunks, and its clip facts.

    Each chunk is a :class:`Segments` of consecutive windows with the frames, time tags and
    lengths :func:`~tempo_kit.video.make_segments` gives the whole video, decoded as
    :func:`~tempo_kit.video.load_video` decodes it (same indices, same resize chain).
    ``chunk_segments`` is the windows per chunk, or a function of the video's segments (frames
    with the final frame size but no pixels: a stride-0 view) giving each chunk's window count,
    e.g. whole compressor calls under a token budget.
    """
    from tempo_kit.video import make_segments
    from tempo_kit.video.decode import decode_frames, open_sampled
    from tempo_kit.video.sampling import DEFAULT_SIZE_MULTIPLE
    from tempo_kit.video.segments import window_positions

    if isinstance(chunk_segments, int) and chunk_segments < 1:
        raise ValueError(f"chunk_segments must be at least 1, got {chunk_segments}")
    reading = sampling.load_arguments()
    opened = open_sampled(path, size_multiple=DEFAULT_SIZE_MULTIPLE, **reading)
    source, plan, indices, resize, window = opened.source, opened.plan, opened.indices, reading["resize"], sampling.window
    count, duration = len(indices), opened.duration
    try:
        timeline = opened.clip(torch.empty((count, 0, 0, 3), dtype=torch.uint8))  # times and lengths only
        skeleton = make_segments(timeline, window, time_base=sampling.time_base)
        sizes = _chunk_sizes(chunk_segments, skeleton, opened.final_size)
    except BaseException:
        source.close()
        raise
    unique, inverse = np.unique(indices, return_inverse=True)
    _, _, index = window_positions(count, window, window)
    windows = torch.from_numpy(inverse)[index]  # [S, window]: the unique frame each slot shows
    facts = {
        "num_frames": count,
        "duration": duration,
        "real_fps": count / duration,
        "source": str(path),
        "chunk_sizes": sizes,
    }

    def chunks() -> Iterator[Segments]:
        try:
            yield from _group_into_chunks(
                decode_frames(source, plan, unique, resize, stream=True), windows, skeleton, sizes
            )
        finally:
            source.close()

    return skeleton, chunks(), facts


def _chunk_sizes(
    chunk_segments: int | Callable[[Segments], Sequence[int]], skeleton: Segments, frame_size: tuple[int, int]
) -> list[int]:
    """Windows per chunk: ``chunk_segments`` each, or what the planning function says (checked)."""
    total = len(skeleton)
    if isinstance(chunk_segments, int):
        return [min(chunk_segments, total - first) for first in range(0, total, chunk_segments)]
    shape = (*skeleton.frames.shape[:2], *frame_size, 3)
    shaped = replace(skeleton, frames=torch.zeros((), dtype=torch.uint8).expand(shape))
    sizes = [int(n) for n in chunk_segments(shaped)]
    if sum(sizes) != total or min(sizes, default=1) < 1:
        raise ValueError(f"chunk plan {sizes} does not cover the video's {total} segments in positive chunks")
    return sizes


def _group_into_chunks(
    decoded: Iterator[torch.Tensor], windows: torch.Tensor, skeleton: Segments, sizes: Sequence[int]
) -> Iterator[Segments]:
    """Regroup one sequential pass of decoded frames into chunks of ``sizes`` windows each.

    ``decoded`` yields the video's unique sampled frames in order, in whatever pieces the decoder
    gives; ``windows`` ``[S, window]`` names the unique frame each window slot shows (nondecreasing
    row by row). Only the frames of the chunk being built are kept (one pass, never a second seek
    from the start: PyAV decodes sequentially).
    """
    held: list[torch.Tensor] = []  # decoded pieces not yet handed out, oldest first
    held_from = 0  # unique position of held[0][0]
    held_until = 0  # one past the last unique position held
    for first, last in itertools.pairwise([0, *itertools.accumulate(sizes)]):
        needed = windows[first:last]
        while held_until <= int(needed[-1, -1]):
            piece = next(decoded, None)
            if piece is None:
                raise MediaError(
                    f"{skeleton.source}: the decoder stopped after {held_until} of {int(windows[-1, -1]) + 1} "
                    "sampled frames; the file is truncated or corrupt"
                )
            held.append(piece)
            held_until += len(piece)
        frames = torch.cat(held) if len(held) > 1 else held[0]
        yield replace(skeleton.slice(first, last), frames=frames[needed - held_from])
        keep_from = int(windows[last, 0]) if last < len(windows) else held_until  # a frame both chunks show stays
        tail = frames[keep_from - held_from :].clone() if keep_from < held_until else None  # frees the rest
        held, held_from = ([tail] if tail is not None else []), keep_from
        del frames


def compress_streamed(
    chunks: Iterator[Segments],
    compress: Callable[[Segments], CompressorOutput],
    describe: Callable[[Segments], list[dict[str, Any]]] | None = None,
    prefetch: int = DEFAULT_PREFETCH,
    on_chunk: Callable[[int], object] | None = None,
) -> tuple[CompressorOutput, list[dict[str, Any]] | None, float]:
    """Compress each chunk as soon as it is decoded, the next ones decoding meanwhile.

    Returns the memory and relevance of all segments as one sample, what ``describe`` says of
    each segment's SVLM input, and the seconds the compressor waited for decoded frames.
    """
    outputs, inputs = [], [] if describe is not None else None
    waited, chunks = 0.0, iter(Prefetch(chunks, prefetch))
    while True:
        tick = time.perf_counter()
        chunk = next(chunks, None)
        waited += time.perf_counter() - tick
        if chunk is None:
            break
        outputs.append(compress(chunk))
        if on_chunk is not None:
            on_chunk(len(chunk))
        if inputs is not None:
            inputs.extend(describe(chunk))
        del chunk  # its frames are no longer needed
    return join_calls(outputs, [sum(len(out.memory) for out in outputs)]), inputs, waited


__getattr__ = moved_names(__name__)  # old names, see tempo_kit.moved
