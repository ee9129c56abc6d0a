"""Where a video's compressed memory comes from: one interface, three sources, one relevance wrapper.

:meth:`TempoPipeline.answer <tempo_kit.inference.api.TempoPipeline.answer>` picks a
:class:`MemorySource`, asks it for the memory of a :class:`~tempo_kit.inference.question.Question`
and hands the memory to the model's ``generate``. Every source reads the settings it needs (the
sampling, the compressor query, the system prompt) from the question alone, so none can forward
them differently:

* :class:`SerialSource`: decode the whole video (or take frames in memory), then compress it;
  optionally keeping the last video's frames and memories for the next call on the same file.
* :class:`StreamedSource`: decode ahead in a background thread while the compressor works on the
  chunks already decoded (:mod:`~tempo_kit.inference.overlap`).
* :class:`~tempo_kit.inference.session.VideoSession`: one decoded video and its SVLM prefix cache.
* :class:`BaseRelevance` wraps any of them: the memory stays the model's, the relevance comes
  from a base SVLM's prior (paper Table 2D), scored chunk by chunk as the source compresses.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError
from tempo_kit.inference.question import Question
from tempo_kit.model.compression import call_plan, compress_samples
from tempo_kit.types import CompressorOutput, Segments
from tempo_kit.video.reading import Sampling

#: ``(segments, their output from the model's compressor, question, progress) -> output``: what a
#: wrapper does to each compressed chunk while its frames are still held.
Rescore = Callable[[Segments, CompressorOutput, Question, bool], CompressorOutput]


@dataclass
class Memory:
    """A video's compressed memory for one question, and what it took.

    Attributes:
        segments: the video's segments (time tags and lengths; a streamed video's hold no frames).
        compressed: memory and relevance of every segment, as one sample.
        timings: seconds of ``decode`` and ``compress``.
        num_frames, duration, video, real_fps: the sampled video's facts.
        svlm_inputs: per segment, what the compressor fed its SVLM (``None`` when it does not say).
        svlm_tokens: SVLM tokens computed for this question (``None`` when not counted).
        reused: what came from an earlier question (``"decode"``, ``"compress"``, ``"prefix"``).
        settings: how the source ran (``overlap``, ``overlap_chunks``), for ``result.settings``.
        earlier_seconds: work for this answer done before :meth:`MemorySource.compress` was called
            (a session decodes when it is opened), counted in the answer's total.
    """

    segments: Segments
    compressed: CompressorOutput
    timings: dict[str, float]
    num_frames: int
    duration: float | None
    video: str | None
    real_fps: float
    svlm_inputs: list[dict[str, Any]] | None = None
    svlm_tokens: int | None = None
    reused: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=lambda: {"overlap": False, "overlap_chunks": None})
    earlier_seconds: float = 0.0


class MemorySource(ABC):
    """Gives the compressed memory of one video for a :class:`Question`."""

    @abstractmethod
    def compress(self, question: Question, *, progress: bool = False, rescore: Rescore | None = None) -> Memory:
        """The memory of this video for ``question``; ``rescore`` is applied to every compressed chunk."""


# ---------------------------------------------------------------------------------------- decoding
@dataclass
class Decoded:
    """A video's segments and facts (:func:`decode_video`)."""

    segments: Segments
    num_frames: int
    duration: float | None
    video: str | None
    real_fps: float


def check_video_arguments(video: Any, frames: Tensor | None, where: str = "answer()") -> None:
    """Exactly one of a video (path or clip) or ``frames``."""
    if (video is None) == (frames is None):
        raise ConfigError(f"{where} needs exactly one of video= (a path or a VideoClip) or frames= (uint8 [T, H, W, 3])")


def load_clip(video: str | Path | Any, sampling: Sampling, progress: bool = False) -> Any:
    """The decoded :class:`~tempo_kit.video.VideoClip` of a path (a clip passes through)."""
    from tempo_kit.video import VideoClip, load_video

    if isinstance(video, VideoClip):
        return video
    with tqdm(total=1, desc="decode", unit="video", disable=not progress, dynamic_ncols=True) as bar:
        clip = load_video(video, **sampling.load_arguments())
        bar.set_postfix(frames=len(clip), seconds=f"{clip.duration:.0f}")
        bar.update(1)
    return clip


def decode_video(
    video: str | Path | Any | None,
    frames: Tensor | None,
    frame_times: Tensor | None,
    sampling: Sampling,
    progress: bool = False,
) -> Decoded:
    """Segments of a video file or clip, or of in-memory frames, with the real sampling rate."""
    from tempo_kit.video import make_segments
    from tempo_kit.video.decode import prepare_frames

    check_video_arguments(video, frames)
    if frames is None:
        clip = load_clip(video, sampling, progress)
        segments = make_segments(clip, sampling.window, time_base=sampling.time_base)
        return Decoded(segments, len(clip), float(clip.duration), str(clip.source or video), float(clip.real_fps))
    frames = torch.as_tensor(frames)
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ConfigError(f"frames must be uint8 [T, H, W, 3] RGB, got {frames.dtype} {tuple(frames.shape)}")
    if sampling.time_base == "container" and frame_times is None:
        raise ConfigError("time_base='container' needs frame_times= (seconds of each frame)")
    frames = prepare_frames(frames, sampling.preprocessing, resize=sampling.resize)
    real_fps = float(sampling.fps)
    segments = make_segments(
        frames, sampling.window, kind="video", real_fps=real_fps, frame_times=frame_times, time_base=sampling.time_base
    )
    return Decoded(segments, int(frames.shape[0]), frames.shape[0] / real_fps, None, real_fps)


def compress_segments(
    compressor: nn.Module, segments: Segments, question: Question, progress: bool, desc: str = "compress"
) -> CompressorOutput:
    """The model's compressor over every segment, under the question's system prompt."""
    with tqdm(total=len(segments), desc=desc, unit="seg", disable=not progress, dynamic_ncols=True) as bar:
        return compress_samples(
            compressor, [segments], [question.compressor_query], question.system_prompt, on_chunk=bar.update
        )


def describe(compressor: nn.Module, segments: Segments) -> list[dict[str, Any]] | None:
    """What the compressor feeds its SVLM per segment, if it says (``describe_inputs``)."""
    method = getattr(compressor, "describe_inputs", None)
    return None if method is None else method(segments)


def _synchronize(compressor: nn.Module) -> None:
    from tempo_kit.model.timing import synchronize

    synchronize(compressor)


# ---------------------------------------------------------------------------------------- sources
class LastVideo:
    """The last video file's segments and its memory per question, kept for the next calls
    (``TempoPipeline(reuse_last_video=True)``): benchmarks ask several questions per video."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.decoded: Decoded | None = None
        self.memories: dict[tuple, CompressorOutput] = {}

    def decoded_for(self, key: tuple) -> Decoded | None:
        if key != self.key:
            self.key, self.decoded, self.memories = key, None, {}
        return self.decoded


def file_identity(path: str | Path) -> tuple[int, int] | tuple[None, None]:
    """(size, modification time in ns) of a file: a file replaced under the same name is a new video."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime_ns


class SerialSource(MemorySource):
    """Decode the whole video, then compress it (``last``: reuse the previous call's work)."""

    def __init__(
        self,
        compressor: nn.Module,
        video: str | Path | Any | None = None,
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        last: LastVideo | None = None,
    ) -> None:
        check_video_arguments(video, frames)
        self.compressor, self.video, self.frames, self.frame_times = compressor, video, frames, frame_times
        self.last = last if isinstance(video, (str, Path)) else None

    def compress(self, question: Question, *, progress: bool = False, rescore: Rescore | None = None) -> Memory:
        start = time.perf_counter()
        reused: list[str] = []
        decoded = None
        if self.last is not None:
            decoded = self.last.decoded_for((str(self.video), *file_identity(self.video), question.sampling))
            reused += ["decode"] if decoded is not None else []
        if decoded is None:
            decoded = decode_video(self.video, self.frames, self.frame_times, question.sampling, progress)
            if self.last is not None:
                self.last.decoded = decoded
        tick = time.perf_counter()
        key = (question.compressor_query, question.system_prompt, rescore is not None, question.relevance_system_prompt)
        compressed = None if self.last is None else self.last.memories.get(key)
        if compressed is not None:
            reused.append("compress")
        else:
            compressed = compress_segments(self.compressor, decoded.segments, question, progress)
            if rescore is not None:
                compressed = rescore(decoded.segments, compressed, question, progress)
            if self.last is not None:
                self.last.memories[key] = compressed
        _synchronize(self.compressor)
        return Memory(
            segments=decoded.segments,
            compressed=compressed,
            timings={"decode": tick - start, "compress": time.perf_counter() - tick},
            num_frames=decoded.num_frames,
            duration=decoded.duration,
            video=decoded.video,
            real_fps=decoded.real_fps,
            svlm_inputs=describe(self.compressor, decoded.segments),
            reused=tuple(reused),
        )


class StreamedSource(MemorySource):
    """Decode a video file ahead of the compressor, chunk by chunk (:mod:`~tempo_kit.inference.overlap`).

    Chunks are :data:`~tempo_kit.inference.overlap.CHUNK_MICRO_BATCHES` whole compressor calls of
    the serial path's plan (:func:`~tempo_kit.model.compression.call_plan`), so every call holds
    the segments the serial path gives it. ``timings``: ``decode`` is the time the compressor
    waited for frames, ``compress`` the rest.
    """

    def __init__(self, compressor: nn.Module, video: str | Path, prefetch: int | None = None) -> None:
        from tempo_kit.inference.overlap import DEFAULT_PREFETCH

        if not isinstance(video, (str, Path)):
            raise ConfigError("overlap=True decodes a video file ahead of the compressor; pass video= a path")
        self.compressor, self.video = compressor, video
        self.prefetch = DEFAULT_PREFETCH if prefetch is None else prefetch

    def compress(self, question: Question, *, progress: bool = False, rescore: Rescore | None = None) -> Memory:
        from tempo_kit.inference.overlap import CHUNK_MICRO_BATCHES, compress_streamed, stream_segments

        compressor, query = self.compressor, question.compressor_query

        def whole_calls(shaped: Segments) -> list[int]:
            calls = call_plan(compressor, [shaped], [query], question.system_prompt)
            return [sum(calls[i : i + CHUNK_MICRO_BATCHES]) for i in range(0, len(calls), CHUNK_MICRO_BATCHES)]

        def compress_chunk(chunk: Segments) -> CompressorOutput:
            out = compress_segments(compressor, chunk, question, progress=False)
            return out if rescore is None else rescore(chunk, out, question, False)

        start = time.perf_counter()
        segments, chunks, facts = stream_segments(self.video, question.sampling, whole_calls)
        with tqdm(total=len(segments), desc="decode+compress", unit="seg", disable=not progress) as bar:
            compressed, inputs, waited = compress_streamed(
                chunks,
                compress_chunk,
                getattr(compressor, "describe_inputs", None),
                self.prefetch,
                on_chunk=bar.update,
            )
        _synchronize(compressor)
        total = time.perf_counter() - start
        return Memory(
            segments=segments,
            compressed=compressed,
            timings={"decode": waited, "compress": total - waited},
            num_frames=facts["num_frames"],
            duration=facts["duration"],
            video=facts["source"],
            real_fps=facts["real_fps"],
            svlm_inputs=inputs,
            settings={"overlap": True, "overlap_chunks": facts["chunk_sizes"]},
        )


class BaseRelevance(MemorySource):
    """``source``'s memory with the relevance of a base SVLM's prior (``relevance="base"``, Table 2D).

    The base compressor scores each chunk the source compresses, under the question's
    ``relevance_system_prompt``, while the chunk's frames are still held.
    """

    def __init__(self, source: MemorySource, base_compressor: nn.Module) -> None:
        self.source, self.base = source, base_compressor

    def compress(self, question: Question, *, progress: bool = False, rescore: Rescore | None = None) -> Memory:
        if rescore is not None:
            raise ConfigError("BaseRelevance wraps a source once; wrap the source itself, not another wrapper")
        return self.source.compress(question, progress=progress, rescore=self._prior)

    def _prior(self, segments: Segments, out: CompressorOutput, question: Question, progress: bool) -> CompressorOutput:
        with tqdm(
            total=len(segments), desc="relevance (base SVLM)", unit="seg", disable=not progress, dynamic_ncols=True
        ) as bar:
            prior = compress_samples(
                self.base, [segments], [question.compressor_query], question.relevance_system_prompt, bar.update
            )
        return CompressorOutput(out.memory, prior.relevance, out.num_segments)
