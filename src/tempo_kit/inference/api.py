"""Answer a question about a video with a saved Tempo model, and see where the tokens went.

>>> pipe = TempoPipeline.from_pretrained("checkpoints/tempo-6b-kit")   # doctest: +SKIP
>>> result = pipe.answer(video="match.mp4", query="Who scores the second goal?", budget=4096)
>>> result.answer, result.tokens_used, result.tokens_per_frame, result.timings

The pipeline decodes and samples the video (2 FPS, ≤ ``max_frames``, long edge ≤ 512), cuts it
into windows, compresses every window with the SVLM (a progress bar per micro-batch), allocates
the budget with the chosen allocator and reduction, and lets the LLM answer. Each phase is timed
separately (decode, compress, allocate, generate). The relevance the allocator reads can come from
the trained SVLM (the default, same forward pass as the memory) or from a base SVLM's prior
(paper Table 2D), each with the routing or standard system prompt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError
from tempo_kit.inference.defaults import (
    DEFAULT_FPS,
    DEFAULT_INFER_MAX_CONTEXT,
    DEFAULT_INFER_MIN_FRAMES,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_WINDOW,
    RELEVANCE_SOURCES,
)
from tempo_kit.inference.result import InferenceResult
from tempo_kit.inference.session import DEFAULT_MAX_CACHE_BYTES, VideoSession
from tempo_kit.model.compression import compress_samples
from tempo_kit.registry import ALLOCATORS
from tempo_kit.types import CompressorOutput, Segments
from tempo_kit.video.decode import DEFAULT_RESIZE, RESIZE_MODES
from tempo_kit.video.options import DEFAULT_TIME_BASE
from tempo_kit.video.preprocessing import check_preprocessing
from tempo_kit.video.segments import TIME_BASES

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_INFER_MAX_CONTEXT",
    "DEFAULT_INFER_MIN_FRAMES",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_WINDOW",
    "RELEVANCE_SOURCES",
]  # named in inference/defaults.py (no torch there), re-exported here
#: Segments per compressor call when the compressor does not say (``segment_batch_size``).
DEFAULT_COMPRESS_CHUNK = 8
#: System prompts of the relevance pass. ``qwen_default`` is Qwen-VL's own default system prompt,
#: what the paper's "Base Model Prior (Standard prompt)" row used (Appendix E.3).
RELEVANCE_PROMPTS = {
    "routing": "routing",
    "standard": "standard",
    "qwen_default": "You are a helpful assistant.",
}
#: Memory tokens of the base-prior compressor: relevance is read before the first memory token
#: (causal attention), so one is enough and the base SVLM never needs Tempo's trained tokens.
BASE_PRIOR_K_MAX = 1


class _TimedAllocator(nn.Module):
    """Wraps an allocator to time its calls (the allocate phase) without changing its result."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seconds = 0.0

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _synchronize(model: nn.Module) -> None:
    """Wait for queued GPU work, so each phase's time is its own and not the next phase's."""
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device.type == "cuda":
        torch.cuda.synchronize(parameter.device)


@contextlib.contextmanager
def _system_prompt(compressor: nn.Module, prompt: str | None) -> Iterator[None]:
    """Use ``prompt`` as the compressor's inference system prompt for the duration of a call."""
    if prompt is None:
        yield
        return
    if not hasattr(compressor, "eval_prompt"):
        raise ConfigError(
            f"relevance_prompt={prompt!r} needs a compressor with prompts (qwen3_vl); "
            f"{type(compressor).__name__} has none"
        )
    from tempo_kit.compressors.qwen3_vl import resolve_prompt

    previous = compressor.eval_prompt
    compressor.eval_prompt = resolve_prompt(RELEVANCE_PROMPTS.get(prompt, prompt))
    try:
        yield
    finally:
        compressor.eval_prompt = previous


def compress_with_progress(
    compressor: nn.Module,
    segments: Segments,
    query: str,
    chunk: int,
    progress: bool,
    desc: str = "compress",
) -> CompressorOutput:
    """The compressor over ``chunk`` segments at a time, with a progress bar.

    Segments are compressed independently, so chunking changes memory use, not results.
    """
    with tqdm(total=len(segments), desc=desc, unit="seg", disable=not progress, dynamic_ncols=True) as bar:
        return compress_samples(compressor, [segments], [query], chunk, on_chunk=bar.update)


def file_identity(path: str | Path) -> tuple[int, int] | tuple[None, None]:
    """(size, modification time in ns) of a file: a file replaced under the same name is a new video."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime_ns


class TempoPipeline:
    """A loaded Tempo model ready to answer questions about videos.

    Args:
        model: a :class:`~tempo_kit.model.TempoModel` (eval mode is set here).
        base_compressor: a second compressor used only for relevance scores
            (``relevance="base"``), e.g. built from the base Qwen3-VL-2B-Instruct.
        reuse_last_video: keep the last video file's frames, and its compressed memory per
            (query, relevance source, prompt), for the next calls on the same file. Benchmarks
            ask several questions per video, and a sweep over budgets, allocators or reductions
            asks the same one several times: decoding and compression, the costly phases, then
            run once. Only for a model whose weights do not change between calls.
    """

    def __init__(
        self, model: nn.Module, base_compressor: nn.Module | None = None, reuse_last_video: bool = False
    ) -> None:
        self.model = model.eval()
        self.base_compressor = None if base_compressor is None else base_compressor.eval()
        self.reuse_last_video = reuse_last_video
        self._video_key: tuple | None = None
        self._decoded: tuple | None = None
        self._compressed: dict[tuple, CompressorOutput] = {}

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: str | None = None,
        base_svlm: str | Path | None = None,
        reuse_last_video: bool = False,
        **overrides: Any,
    ) -> TempoPipeline:
        """Load a kit-format model folder (see ``tempo-kit convert`` for the released weights).

        Args:
            device: where to run (``"cuda"``, ``"cpu"``).
            dtype: load both the SVLM and the LLM in this dtype (``"bfloat16"`` as released).
            base_svlm: base Qwen3-VL folder for ``relevance="base"`` (paper Table 2D).
            reuse_last_video: see :class:`TempoPipeline`.
            overrides: top-level config overrides passed to ``TempoModel.from_pretrained``.
        """
        from tempo_kit.model import TempoModel

        if dtype is not None:
            overrides.setdefault("compressor", {})["dtype"] = dtype
            overrides.setdefault("decoder", {})["dtype"] = dtype
        model = TempoModel.from_pretrained(path, **overrides).to(device)
        base = None
        if base_svlm is not None:
            base = load_base_compressor(base_svlm, dtype=dtype or "auto").to(device)
        return cls(model, base, reuse_last_video=reuse_last_video)

    def sampling(
        self,
        *,
        fps: float = DEFAULT_FPS,
        min_frames: int = DEFAULT_INFER_MIN_FRAMES,
        max_frames: int = DEFAULT_MAX_FRAMES,
        preprocessing: str | None = None,
        resize: str = DEFAULT_RESIZE,
        time_base: str = DEFAULT_TIME_BASE,
    ) -> dict[str, Any]:
        """How a video is read (the arguments of :meth:`answer` of that name), checked, with the
        model's own ``preprocessing`` when none is given."""
        preprocessing = check_preprocessing(preprocessing or self.model.config.preprocessing)
        if resize not in RESIZE_MODES:
            raise ConfigError(f"resize={resize!r}: use one of {', '.join(RESIZE_MODES)}")
        if time_base not in TIME_BASES:
            raise ConfigError(f"time_base={time_base!r}: use one of {', '.join(TIME_BASES)}")
        for name, value in (("min_frames", min_frames), ("max_frames", max_frames)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive number of frames, got {value!r}")
        if min_frames > max_frames:
            raise ConfigError(f"min_frames={min_frames} exceeds max_frames={max_frames}")
        return {
            "fps": fps,
            "min_frames": min_frames,
            "max_frames": max_frames,
            "preprocessing": preprocessing,
            "resize": resize,
            "time_base": time_base,
        }

    def open(
        self,
        video: str | Path | Any | None = None,
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        cache_device: str | torch.device | None = None,
        max_cache_bytes: int | None = None,
        progress: bool = False,
        **reading: Any,
    ) -> VideoSession:
        """Decode ``video`` once and return a session that answers many questions about it.

        Follow-up questions reuse each segment's question-independent SVLM prefix (see
        :class:`~tempo_kit.inference.session.VideoSession`). ``reading`` takes the arguments of
        :meth:`answer` that say how the video is read (``fps``, ``min_frames``, ``max_frames``,
        ``preprocessing``, ``resize``, ``time_base``, ``window``, ``backend``). Use it as a
        context manager or ``close()`` it.
        """
        return VideoSession(
            self,
            video,
            frames=frames,
            frame_times=frame_times,
            cache_device=cache_device,
            max_cache_bytes=DEFAULT_MAX_CACHE_BYTES if max_cache_bytes is None else max_cache_bytes,
            progress=progress,
            **reading,
        )

    def _segments(
        self,
        video: str | Path | Any | None,
        frames: Tensor | None,
        *,
        sampling: dict[str, Any],
        window: int,
        frame_times: Tensor | None,
        backend: str,
        progress: bool,
    ) -> tuple[Segments, int, float | None, str | None, float]:
        """Segments of the video (or of in-memory frames), with the real sampling rate."""
        from tempo_kit.video import make_segments
        from tempo_kit.video.decode import prepare_frames

        if (video is None) == (frames is None):
            raise ConfigError(
                "give exactly one of video= (a path or a VideoClip) or frames= (uint8 [T, H, W, 3])"
            )
        time_base = sampling["time_base"]
        if frames is not None:
            frames = torch.as_tensor(frames)
            if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise ConfigError(
                    f"frames must be uint8 [T, H, W, 3] RGB, got {frames.dtype} {tuple(frames.shape)}"
                )
            if time_base == "container" and frame_times is None:
                raise ConfigError("time_base='container' needs frame_times= (seconds of each frame)")
            frames = prepare_frames(frames, sampling["preprocessing"], resize=sampling["resize"])
            real_fps = float(sampling["fps"])
            segments = make_segments(
                frames, window, kind="video", real_fps=real_fps, frame_times=frame_times, time_base=time_base
            )
            return segments, int(frames.shape[0]), frames.shape[0] / real_fps, None, real_fps
        clip = self._load(video, sampling=sampling, backend=backend, progress=progress)
        segments = make_segments(clip, window, time_base=time_base)
        return segments, len(clip), float(clip.duration), str(clip.source or video), float(clip.real_fps)

    def _load(self, video: str | Path | Any, *, sampling: dict[str, Any], backend: str, progress: bool) -> Any:
        """The decoded :class:`~tempo_kit.video.VideoClip` of a path (a clip passes through):
        the one decoding step of :meth:`answer` and of sessions."""
        from tempo_kit.video import VideoClip, load_video

        if isinstance(video, VideoClip):
            return video
        with tqdm(total=1, desc="decode", unit="video", disable=not progress, dynamic_ncols=True) as bar:
            clip = load_video(
                video,
                fps=sampling["fps"],
                min_frames=sampling["min_frames"],
                max_frames=sampling["max_frames"],
                preprocessing=sampling["preprocessing"],
                resize=sampling["resize"],
                backend=backend,
            )
            bar.set_postfix(frames=len(clip), seconds=f"{clip.duration:.0f}")
            bar.update(1)
        return clip

    def _compress(
        self, segments: Segments, query: str, relevance: str, relevance_prompt: str | None, progress: bool
    ) -> CompressorOutput:
        """Memory from the model's SVLM; relevance from it or from the base SVLM's prior."""
        compressor = self.model.compressor
        chunk = int(getattr(compressor, "segment_batch_size", DEFAULT_COMPRESS_CHUNK))
        with _system_prompt(compressor, relevance_prompt if relevance == "trained" else None):
            compressed = compress_with_progress(compressor, segments, query, chunk, progress)
        if relevance == "trained":
            return compressed
        with _system_prompt(self.base_compressor, relevance_prompt):
            prior = compress_with_progress(
                self.base_compressor, segments, query, chunk, progress, desc="relevance (base SVLM)"
            )
        return CompressorOutput(compressed.memory, prior.relevance, compressed.num_segments)

    @torch.no_grad()
    def answer(
        self,
        video: str | Path | Any | None = None,
        query: str = "",
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        budget: int | None = None,
        max_frames: int = DEFAULT_MAX_FRAMES,
        min_frames: int = DEFAULT_INFER_MIN_FRAMES,
        window: int = DEFAULT_WINDOW,
        fps: float = DEFAULT_FPS,
        preprocessing: str | None = None,
        resize: str = DEFAULT_RESIZE,
        time_base: str = DEFAULT_TIME_BASE,
        max_context: int | None = DEFAULT_INFER_MAX_CONTEXT,
        allocator: str | Mapping[str, Any] | None = None,
        reduction: str | None = None,
        k_min: int | None = None,
        relevance: str = "trained",
        relevance_prompt: str | None = None,
        compressor_query: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        backend: str = "decord",
        progress: bool = False,
        compressed: CompressorOutput | None = None,
        **generation_kwargs: Any,
    ) -> InferenceResult:
        """Answer ``query`` about ``video`` (a path or a decoded clip) or ``frames``.

        Args:
            budget: visual tokens for the whole video (default: the model's, 8192 as released).
            max_frames: most frames sampled (compatibility §1: 1024).
            min_frames: fewest frames sampled (compatibility §1: 4 in the released inference
                script and demo, 8 in its evaluation).
            window: frames per segment (compatibility §1: 8 at inference).
            fps: frames sampled per second of video (compatibility §1: 2); for ``frames=``, the
                rate they were sampled at (the time base of their tags).
            preprocessing: ``"released"`` (the released frame geometry, compatibility §1) or
                ``"qwen3_vl"`` (Hugging Face's Qwen3-VL geometry); default: the geometry the
                model was trained with (its config's ``preprocessing``).
            resize: ``"pil"`` (exact, default), ``"decoder"`` (fast, in the decoder) or ``"torch"``.
            time_base: ``"released"`` (the real sampling rate) or ``"container"`` (container
                timestamps) for both kinds of time tag.
            max_context: the LLM context cap (released: 16384 at inference, 32768 in evaluation;
                ``None``: the model config's).
            allocator: registry name or spec (``ata``, ``uniform``, ``topk``, …; default the model's).
            reduction: which tokens a segment keeps (``head``, ``tail``, ``merge``, ``random``).
            k_min: anchor tokens per segment (default the model's, 4).
            relevance: ``"trained"`` (the model's SVLM, same pass as the memory) or ``"base"``
                (a base SVLM's prior; needs ``base_svlm``).
            relevance_prompt: ``"routing"`` (default at inference), ``"standard"``,
                ``"qwen_default"`` or a literal system prompt for the relevance pass. With
                ``relevance="trained"`` it is also the prompt the memory is compressed under
                (one forward pass gives both).
            compressor_query: the text the SVLM is conditioned on, if not ``query`` (e.g. the bare
                question without the multiple-choice options and instructions).
            progress: show progress bars for decoding and compression.
            compressed: memory and relevance already computed for this video and
                ``compressor_query`` (what a :class:`~tempo_kit.inference.session.VideoSession`
                passes); the compressor is then skipped.
        """
        from tempo_kit.model import inference_batch

        if not isinstance(query, str) or not query.strip():
            raise ConfigError("query is empty; pass the question to answer")
        if relevance not in RELEVANCE_SOURCES:
            raise ConfigError(f"relevance must be one of {', '.join(RELEVANCE_SOURCES)}, got {relevance!r}")
        if relevance == "base" and self.base_compressor is None:
            raise ConfigError(
                "relevance='base' needs the base SVLM: load with base_svlm=<Qwen3-VL-2B-Instruct folder> "
                "(CLI: --base-svlm DIR)"
            )
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"window must be a positive number of frames, got {window!r}")
        sampling = self.sampling(
            fps=fps,
            min_frames=min_frames,
            max_frames=max_frames,
            preprocessing=preprocessing,
            resize=resize,
            time_base=time_base,
        )
        if max_context is not None and (isinstance(max_context, bool) or not isinstance(max_context, int)
                                        or max_context < 1):
            raise ConfigError(f"max_context must be a positive number of tokens or None, got {max_context!r}")
        from tempo_kit.model.config import check_model_settings

        given = {key: value for key, value in (("budget", budget), ("k_min", k_min)) if value is not None}
        check_model_settings(given, "")  # before decoding: budget=True or 0 is refused, not coerced
        model = self.model
        timings: dict[str, float] = {}
        reused: list[str] = []
        start = time.perf_counter()
        video_key = None
        if self.reuse_last_video and frames is None and isinstance(video, (str, Path)):
            video_key = (str(video), *file_identity(video), tuple(sampling.items()), window, backend)
        if video_key is not None and video_key == self._video_key:
            segments, num_frames, duration, source, real_fps = self._decoded
            reused.append("decode")
        else:
            decoded = self._segments(
                video,
                frames,
                sampling=sampling,
                window=window,
                frame_times=frame_times,
                backend=backend,
                progress=progress,
            )
            segments, num_frames, duration, source, real_fps = decoded
            if video_key is not None:
                self._video_key, self._decoded, self._compressed = video_key, decoded, {}
        timings["decode"] = time.perf_counter() - start

        svlm_query = query if compressor_query is None else compressor_query
        tick = time.perf_counter()
        compress_key = (svlm_query, relevance, relevance_prompt)
        if compressed is not None:
            if list(compressed.num_segments) != [len(segments)]:
                raise ConfigError(
                    f"compressed= holds {compressed.num_segments} segments but the video has {len(segments)}; "
                    "pass the compressor output of this video with the same sampling"
                )
        elif video_key is not None and compress_key in self._compressed:
            compressed = self._compressed[compress_key]
            reused.append("compress")
        else:
            compressed = self._compress(segments, svlm_query, relevance, relevance_prompt, progress)
            if video_key is not None:
                self._compressed[compress_key] = compressed
        _synchronize(model)
        timings["compress"] = time.perf_counter() - tick

        config = model.config
        spec = config.allocator if allocator is None else allocator
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        timed = _TimedAllocator(ALLOCATORS.build(dict(spec)))
        tick = time.perf_counter()
        batch = inference_batch(model.tokenizer, [segments], [query])
        batch.queries = [svlm_query]
        # generate() runs allocation, reduction, assembly and the LLM on the memory computed above
        out = model.generate(
            batch,
            budget=budget,
            k_min=k_min,
            reduction=reduction,
            allocator=timed,
            max_context=max_context,
            max_new_tokens=max_new_tokens,
            compressed=compressed,
            **generation_kwargs,
        )
        _synchronize(model)
        timings["allocate"] = timed.seconds
        timings["generate"] = time.perf_counter() - tick - timed.seconds
        timings["total"] = time.perf_counter() - start
        settings = {
            "allocator": dict(spec),
            "reduction": config.reduction_name if reduction is None else reduction,
            "relevance": relevance,
            "relevance_prompt": relevance_prompt or "model default",
            **sampling,
            "real_fps": real_fps,
            "max_context": model.config.max_context if max_context is None else max_context,
            "max_new_tokens": max_new_tokens,
        }
        describe = getattr(model.compressor, "describe_inputs", None)
        return InferenceResult(
            answer=out.texts[0],
            query=query,
            video=source,
            allocation=out.allocations[0],
            num_frames=num_frames,
            duration=duration,
            window=window,
            timings=timings,
            settings=settings,
            reused=tuple(reused),
            svlm_inputs=None if describe is None else describe(segments),
        )


def load_base_compressor(path: str | Path, dtype: str = "auto", prompt: str = "routing") -> nn.Module:
    """A ``qwen3_vl`` compressor on a base SVLM, used only for its relevance prior (Table 2D)."""
    from tempo_kit.registry import COMPRESSORS

    return COMPRESSORS.build(
        {
            "name": "qwen3_vl",
            "pretrained": str(path),
            "k_max": BASE_PRIOR_K_MAX,
            "dtype": dtype,
            "prompt": RELEVANCE_PROMPTS.get(prompt, prompt),
        }
    )
