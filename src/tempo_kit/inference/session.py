"""Ask one video many questions: decode once, compress each segment's question-independent prefix once.

>>> session = pipe.open("match.mp4")                          # doctest: +SKIP
>>> session.ask("Who scores first?").answer                  # doctest: +SKIP
>>> follow_up = session.ask("And the second goal?")          # doctest: +SKIP
>>> follow_up.svlm_tokens, follow_up.timings["compress"]     # doctest: +SKIP

A session keeps the decoded segments and, per segment, the SVLM's keys and values over the part of
its sequence that does not depend on the question (system prompt and video tokens, the vision
tower and its DeepStack features included; :mod:`tempo_kit.compressors.prefix_cache`). The first
question computes them; every later one runs only its own tokens and the memory tokens against
them, and gets the same memory, relevance, allocation and answer as :meth:`TempoPipeline.answer`.
A compressor without a prefix cache makes the session recompress the whole video per question.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from tempo_kit.compressors.prefix_cache import PrefixCaching, SegmentPrefix
from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.inference.question import Question, resolve_sampling
from tempo_kit.inference.result import InferenceResult
from tempo_kit.inference.sources import (
    Memory,
    MemorySource,
    Rescore,
    check_video_arguments,
    compress_segments,
    decode_video,
    describe,
)
from tempo_kit.model.compression import call_plan, check_system_prompt, join_calls, plan_pieces
from tempo_kit.types import CompressorOutput
from tempo_kit.video.reading import Sampling

logger = logging.getLogger("tempo_kit.inference")

#: Most bytes the cached prefixes of one session may take. At real shapes a segment of 8 frames
#: of 512×256 has a prefix of ~613 tokens: keys and values of 28 layers × 8 heads × 128 dims in bf16
#: are 112 KiB per token, ≈ 67 MiB per segment, ≈ 8.4 GiB for a 1024-frame video (128 segments).
DEFAULT_MAX_CACHE_BYTES = 16 * 2**30

#: Arguments of ``answer`` that say how a video is read: set once, when a session is opened.
READING_KEYS = ("sampling", *Sampling.names())

#: Compressor classes already told that they have no prefix cache (said once per process).
_TOLD_NO_CACHE: set[str] = set()


class VideoSession(MemorySource):
    """One decoded video and its compressor prefix cache, answering questions with :meth:`ask`:
    the prefix-cached :class:`~tempo_kit.inference.sources.MemorySource`.

    Open one with :meth:`TempoPipeline.open <tempo_kit.inference.api.TempoPipeline.open>`.

    Args:
        pipeline: the :class:`~tempo_kit.inference.api.TempoPipeline` whose model answers.
        video: a path or a decoded :class:`~tempo_kit.video.VideoClip`; or ``frames``
            (uint8 ``[T, H, W, 3]``) with optional ``frame_times``, as for ``answer``.
        cache_device: where cached prefixes live (``"cpu"`` keeps accelerator memory free; they
            move to the model's device one micro-batch at a time). Default: the model's device.
        max_cache_bytes: cap on the cached prefixes. Segments past the cap are recompressed in
            full for every question (said once); a cap below one segment's prefix is an error.
        reading: how the video is read: ``sampling=`` a :class:`~tempo_kit.video.reading.Sampling`
            and/or its fields as keywords (see :data:`READING_KEYS`), fixed for the session's life.
    """

    def __init__(
        self,
        pipeline: Any,
        video: str | Path | Any | None = None,
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        cache_device: str | torch.device | None = None,
        max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
        progress: bool = False,
        **reading: Any,
    ) -> None:
        if isinstance(max_cache_bytes, bool) or not isinstance(max_cache_bytes, int) or max_cache_bytes < 1:
            raise ConfigError(
                f"max_cache_bytes must be a positive number of bytes, got {max_cache_bytes!r} "
                f"(default {DEFAULT_MAX_CACHE_BYTES}); to recompute everything per question use answer()"
            )
        check_video_arguments(video, frames, "open()")
        unknown = sorted(set(reading) - set(READING_KEYS))
        if unknown:
            raise ConfigError(
                f"open() got unknown argument {unknown[0]!r}{did_you_mean(unknown[0], READING_KEYS)}; "
                f"how a video is read is set by {', '.join(READING_KEYS)}"
            )
        self.pipeline = pipeline
        self.cache_device = None if cache_device is None else torch.device(cache_device)
        self.max_cache_bytes = max_cache_bytes
        given = {k: v for k, v in reading.items() if v is not None}
        #: how the video is read (every question of the session reads it so)
        self.sampling: Sampling = resolve_sampling(pipeline.model.config, given.pop("sampling", None), given)
        start = time.perf_counter()
        decoded = decode_video(video, frames, frame_times, self.sampling, progress)
        self.segments, self.num_frames, self.duration = decoded.segments, decoded.num_frames, decoded.duration
        self.video, self.real_fps = decoded.video, decoded.real_fps
        self.decode_seconds = time.perf_counter() - start
        self._prefixes: list[SegmentPrefix | None] = [None] * len(self.segments)
        self._prompt: str | None = None
        self._told_cap = False
        self._closed = False
        self.questions = 0

    # ------------------------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def cached_segments(self) -> int:
        """Segments whose prefix is cached."""
        return sum(p is not None for p in self._prefixes)

    @property
    def cache_bytes(self) -> int:
        """Memory the cached prefixes take now."""
        return sum(p.nbytes for p in self._prefixes if p is not None)

    @property
    def frames_bytes(self) -> int:
        """Memory the decoded frames take (the session keeps its segments' frames, not the clip)."""
        return 0 if self.segments is None else self.segments.frames.untyped_storage().nbytes()

    def close(self) -> None:
        """Free the cache and the frames; further questions raise :class:`ConfigError`."""
        self._prefixes = []
        self.segments = None
        self._closed = True

    def __enter__(self) -> VideoSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ asking
    def ask(self, question: str | Question, **options: Any) -> InferenceResult:
        """Answer ``question``: :meth:`TempoPipeline.answer` with this session as its memory source,
        so the same keywords (``budget``, ``allocator``, ``reduction``, ``k_min``,
        ``relevance_prompt``, ``max_new_tokens``, …) except how the video is read.

        The result's ``svlm_tokens`` counts the SVLM tokens computed for this question (prefixes
        included the first time), ``timings["compress"]`` their time, and ``reused`` names what
        came from the session (``decode``, ``prefix``).
        """
        if self._closed:
            raise ConfigError("this video session is closed; open a new one with pipeline.open(video)")
        for key in ("video", "frames", "frame_times", "source", *READING_KEYS):
            if key in options:
                raise ConfigError(
                    f"ask() got {key}=…, which is fixed when the session is opened; open a new session "
                    "for another video or sampling"
                )
        if isinstance(question, Question):  # resolved already (with this session's sampling)
            return self.pipeline.answer(question=question, source=self, **options)
        return self.pipeline.answer(query=question, source=self, sampling=self.sampling, **options)

    @torch.no_grad()
    def compress(self, question: Question, *, progress: bool = False, rescore: Rescore | None = None) -> Memory:
        """Memory and relevance of every segment for ``question``, from the cache where it holds them."""
        if self._closed:
            raise ConfigError("this video session is closed; open a new one with pipeline.open(video)")
        if question.sampling != self.sampling:
            raise ConfigError(
                f"the question reads the video as {question.sampling} but this session was opened with "
                f"{self.sampling}; open a new session for another sampling"
            )
        tick = time.perf_counter()
        compressed, svlm_tokens, prefix_reused = self._compress(question, progress)
        if rescore is not None:
            compressed = rescore(self.segments, compressed, question, progress)
        return self.memory_of(compressed, svlm_tokens, prefix_reused, time.perf_counter() - tick)

    def memory_of(
        self, compressed: CompressorOutput, svlm_tokens: int | None, prefix_reused: bool, seconds: float
    ) -> Memory:
        """The :class:`Memory` record of one answered question (counts it): ``compressed`` came from
        :meth:`compress` or from a batch of several questions' suffix calls
        (:mod:`tempo_kit.inference.batched`); ``seconds`` is the compression time it waited for."""
        first = self.questions == 0
        self.questions += 1
        return Memory(
            segments=self.segments,
            compressed=compressed,
            timings={"decode": self.decode_seconds if first else 0.0, "compress": seconds},
            num_frames=self.num_frames,
            duration=self.duration,
            video=self.video,
            real_fps=self.real_fps,
            svlm_inputs=describe(self.pipeline.model.compressor, self.segments),
            svlm_tokens=svlm_tokens,
            reused=(() if first else ("decode",)) + (("prefix",) if prefix_reused else ()),
            earlier_seconds=self.decode_seconds if first else 0.0,
        )

    def _compress(self, question: Question, progress: bool) -> tuple[CompressorOutput, int | None, bool]:
        """Memory and relevance of every segment, from the cache where it holds them."""
        compressor = self.pipeline.model.compressor
        if not self.caches_prefixes(question):
            self._say_no_cache(compressor)
            return compress_segments(compressor, self.segments, question, progress), None, False
        self._use_prompt(question)
        outputs, tokens, reused = [], 0, self.cached_segments > 0
        total = len(self.segments)
        with tqdm(total=total, desc="compress", unit="seg", disable=not progress, dynamic_ncols=True) as bar:
            for indices, prefixes, fresh_tokens in self._prefix_calls(question):
                out = compressor.compress_with_prefixes(prefixes, [question.compressor_query] * len(indices))
                outputs.append(out)
                tokens += fresh_tokens + out.tokens
                bar.update(len(indices))
        return join_calls(outputs, [total]), tokens, reused

    def caches_prefixes(self, question: Question) -> bool:
        """Whether this session's compressor keeps prefixes (checks the question's system prompt)."""
        compressor = self.pipeline.model.compressor
        check_system_prompt(compressor, question.system_prompt)
        return isinstance(compressor, PrefixCaching)

    def prefixes(self, question: Question) -> tuple[list[SegmentPrefix], int, bool]:
        """Every segment's prefix under ``question``'s system prompt, computing the missing ones in
        the calls :meth:`compress` makes (so they are the same tensors): ``(prefixes, SVLM tokens
        computed, whether cached prefixes were reused)``. Prefixes past ``max_cache_bytes`` are
        returned but not kept. For :mod:`tempo_kit.inference.batched`, which runs the suffix calls
        of several questions together."""
        if question.sampling != self.sampling:
            raise ConfigError(
                f"the question reads the video as {question.sampling} but this session was opened with "
                f"{self.sampling}; open a new session for another sampling"
            )
        self._use_prompt(question)
        reused = self.cached_segments > 0
        out: list[SegmentPrefix] = []
        tokens = 0
        for _, prefixes, fresh_tokens in self._prefix_calls(question):
            out.extend(prefixes)
            tokens += fresh_tokens
        return out, tokens, reused

    def _use_prompt(self, question: Question) -> None:
        """Drop the cached prefixes when ``question`` has another system prompt (a prefix holds it)."""
        if self._closed:
            raise ConfigError("this video session is closed; open a new one with pipeline.open(video)")
        prompt_text = self.pipeline.model.compressor.prompt_for(question.system_prompt)
        if prompt_text != self._prompt:
            self._prefixes = [None] * len(self.segments)
            self._prompt = prompt_text

    def _prefix_calls(self, question: Question):
        """Per compressor call of the plan: ``(segment indices, their prefixes, fresh prefix tokens)``,
        encoding and keeping the prefixes the cache lacks."""
        compressor = self.pipeline.model.compressor
        prompt = question.system_prompt
        prompt_text = compressor.prompt_for(prompt)
        # the calls compress_samples makes, costed padded: the prefix-cache calls pad even when the
        # compressor's own forward packs (pack_segments)
        plan = call_plan(compressor, [self.segments], [question.compressor_query], prompt, padded=True)
        for ((_, first, last),) in plan_pieces(plan, [len(self.segments)]):  # one sample: one piece per call
            indices = list(range(first, last))
            missing = [j for j in indices if self._prefixes[j] is None]
            fresh = dict(zip(missing, compressor.encode_prefixes(self.segments, missing, prompt_text))) if missing else {}
            self._keep(fresh)
            prefixes = [fresh[j] if j in fresh else self._prefixes[j] for j in indices]
            yield indices, prefixes, sum(p.length for p in fresh.values())

    def _keep(self, fresh: dict[int, SegmentPrefix]) -> None:
        """Cache new prefixes in segment order while they fit under ``max_cache_bytes``."""
        used = self.cache_bytes
        for index, prefix in sorted(fresh.items()):
            if prefix.nbytes > self.max_cache_bytes:
                raise ConfigError(
                    f"max_cache_bytes={self.max_cache_bytes} is smaller than the prefix cache of one segment "
                    f"({prefix.nbytes} bytes, segment {index} of {self.video or 'the video'}); raise it to at "
                    f"least {prefix.nbytes}, or use pipeline.answer() to recompute every question"
                )
            if used + prefix.nbytes > self.max_cache_bytes:
                if not self._told_cap:
                    self._told_cap = True
                    logger.warning(
                        "prefix cache full at max_cache_bytes=%d: segment %d and later (of %d) are recompressed "
                        "for every question; raise max_cache_bytes or pass cache_device='cpu'",
                        self.max_cache_bytes,
                        index,
                        len(self.segments),
                    )
                continue
            self._prefixes[index] = prefix if self.cache_device is None else prefix.to(self.cache_device)
            used += prefix.nbytes

    @staticmethod
    def _say_no_cache(compressor: Any) -> None:
        name = type(compressor).__name__
        if name not in _TOLD_NO_CACHE:
            _TOLD_NO_CACHE.add(name)
            logger.warning(
                "compressor %s has no prefix cache: every question recompresses the whole video", name
            )
