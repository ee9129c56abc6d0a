"""Answer a question about a video with a saved Tempo model, and see where the tokens went.

>>> pipe = TempoPipeline.from_pretrained("checkpoints/tempo-6b-kit")   # doctest: +SKIP
>>> result = pipe.answer(video="match.mp4", query="Who scores the second goal?", budget=4096)
>>> result.answer, result.tokens_used, result.tokens_per_frame, result.timings

The pipeline decodes and samples the video (a :class:`~tempo_kit.video.reading.Sampling`: 2 FPS,
≤ ``max_frames``, the model's frame geometry), cuts it into windows, and asks the model: its
``compress`` (a progress bar per compressor call) and its ``generate`` (allocation, reduction,
assembly, the LLM), which times each phase. The relevance the allocator reads can come from the
trained SVLM (the default, same forward pass as the memory) or from a base SVLM's prior (paper
Table 2D), each with the routing or standard system prompt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from tempo_kit.errors import ConfigError, check_choice
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.inference.defaults import DEFAULT_INFER_MAX_CONTEXT, RELEVANCE_SOURCES
from tempo_kit.inference.result import InferenceResult
from tempo_kit.inference.session import DEFAULT_MAX_CACHE_BYTES, VideoSession
from tempo_kit.model.compression import compress_samples
from tempo_kit.model.timing import synchronize
from tempo_kit.types import CompressorOutput, Segments
from tempo_kit.video.reading import Sampling, split_sampling

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


def relevance_system_prompt(prompt: str | None) -> str | None:
    """The compressor system prompt of a ``relevance_prompt`` name (or literal text); ``None`` stays."""
    return None if prompt is None else RELEVANCE_PROMPTS.get(prompt, prompt)


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

    def sampling(self, sampling: Sampling | Mapping[str, Any] | None = None, **values: Any) -> Sampling:
        """How a video is read: ``sampling`` (a record or mapping) and ``values`` on the inference
        defaults, checked, with the model's own ``preprocessing`` when none is chosen."""
        base = sampling if isinstance(sampling, Sampling) else Sampling.inference().updated(sampling or {})
        return base.updated(values).with_preprocessing(self.model.config.preprocessing)

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
        :class:`~tempo_kit.inference.session.VideoSession`). ``reading`` says how the video is
        read: ``sampling=`` a :class:`~tempo_kit.video.reading.Sampling` and/or its fields as
        keywords (``fps``, ``min_frames``, ``max_frames``, ``window``, ``preprocessing``,
        ``resize``, ``time_base``, ``backend``). Use it as a context manager or ``close()`` it.
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
        sampling: Sampling,
        frame_times: Tensor | None,
        progress: bool,
    ) -> tuple[Segments, int, float | None, str | None, float]:
        """Segments of the video (or of in-memory frames), with the real sampling rate."""
        from tempo_kit.video import make_segments
        from tempo_kit.video.decode import prepare_frames

        if (video is None) == (frames is None):
            raise ConfigError(
                "give exactly one of video= (a path or a VideoClip) or frames= (uint8 [T, H, W, 3])"
            )
        if frames is not None:
            frames = torch.as_tensor(frames)
            if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise ConfigError(
                    f"frames must be uint8 [T, H, W, 3] RGB, got {frames.dtype} {tuple(frames.shape)}"
                )
            if sampling.time_base == "container" and frame_times is None:
                raise ConfigError("time_base='container' needs frame_times= (seconds of each frame)")
            frames = prepare_frames(frames, sampling.preprocessing, resize=sampling.resize)
            real_fps = float(sampling.fps)
            segments = make_segments(
                frames,
                sampling.window,
                kind="video",
                real_fps=real_fps,
                frame_times=frame_times,
                time_base=sampling.time_base,
            )
            return segments, int(frames.shape[0]), frames.shape[0] / real_fps, None, real_fps
        clip = self._load(video, sampling=sampling, progress=progress)
        segments = make_segments(clip, sampling.window, time_base=sampling.time_base)
        return segments, len(clip), float(clip.duration), str(clip.source or video), float(clip.real_fps)

    def _load(self, video: str | Path | Any, *, sampling: Sampling, progress: bool) -> Any:
        """The decoded :class:`~tempo_kit.video.VideoClip` of a path (a clip passes through):
        the one decoding step of :meth:`answer` and of sessions."""
        from tempo_kit.video import VideoClip, load_video

        if isinstance(video, VideoClip):
            return video
        with tqdm(total=1, desc="decode", unit="video", disable=not progress, dynamic_ncols=True) as bar:
            clip = load_video(video, **sampling.load_arguments())
            bar.set_postfix(frames=len(clip), seconds=f"{clip.duration:.0f}")
            bar.update(1)
        return clip

    @staticmethod
    def model_system_prompt(relevance: str, relevance_prompt: str | None) -> str | None:
        """The system prompt the model's own compressor calls get: the relevance prompt when it
        scores relevance (``"trained"``), else its own inference prompt (``None``)."""
        return relevance_system_prompt(relevance_prompt) if relevance == "trained" else None

    def compress(
        self,
        segments: Segments,
        query: str,
        *,
        relevance: str = "trained",
        relevance_prompt: str | None = None,
        progress: bool = False,
    ) -> CompressorOutput:
        """Memory from the model's SVLM; relevance from it or from the base SVLM's prior.

        With ``relevance="trained"`` one pass gives both, under ``relevance_prompt`` (default: the
        compressor's own inference prompt); with ``"base"`` the base SVLM scores relevance under
        that prompt while the model's SVLM compresses under its own.
        """
        prompt = relevance_system_prompt(relevance_prompt)
        with tqdm(total=len(segments), desc="compress", unit="seg", disable=not progress, dynamic_ncols=True) as bar:
            compressed = compress_samples(
                self.model.compressor,
                [segments],
                [query],
                self.model_system_prompt(relevance, relevance_prompt),
                on_chunk=bar.update,
            )
        if relevance == "trained":
            return compressed
        with tqdm(
            total=len(segments), desc="relevance (base SVLM)", unit="seg", disable=not progress, dynamic_ncols=True
        ) as bar:
            prior = compress_samples(self.base_compressor, [segments], [query], prompt, on_chunk=bar.update)
        return CompressorOutput(compressed.memory, prior.relevance, compressed.num_segments)

    @torch.no_grad()
    def answer(
        self,
        video: str | Path | Any | None = None,
        query: str = "",
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        sampling: Sampling | Mapping[str, Any] | None = None,
        budget: int | None = None,
        max_context: int | None = DEFAULT_INFER_MAX_CONTEXT,
        allocator: str | Mapping[str, Any] | None = None,
        reduction: str | None = None,
        k_min: int | None = None,
        relevance: str = "trained",
        relevance_prompt: str | None = None,
        compressor_query: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        progress: bool = False,
        compressed: CompressorOutput | None = None,
        overlap: bool = False,
        **options: Any,
    ) -> InferenceResult:
        """Answer ``query`` about ``video`` (a path or a decoded clip) or ``frames``.

        Args:
            sampling: how the video is read, a :class:`~tempo_kit.video.reading.Sampling` (or a
                mapping of its fields); its fields can also be given as keywords (``fps``,
                ``min_frames``, ``max_frames``, ``window``, ``preprocessing``, ``resize``,
                ``time_base``, ``backend``). Defaults: the released inference script's (2 FPS,
                4–1024 frames, windows of 8) and the model's own frame geometry.
            budget: visual tokens for the whole video (default: the model's, 8192 as released).
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
            overlap: decode the video file in a background thread, chunk by chunk, while the
                compressor works on the chunks already decoded (:mod:`~tempo_kit.inference.overlap`):
                same answer, decoded frames held per chunk, not per video; for a file read once
                (not with ``reuse_last_video``).
            options: sampling fields (above); the rest go to the LLM's ``generate``.
        """
        from tempo_kit.model import inference_batch
        from tempo_kit.model.config import check_model_settings

        if not isinstance(query, str) or not query.strip():
            raise ConfigError("query is empty; pass the question to answer")
        check_choice(relevance, RELEVANCE_SOURCES, "relevance")
        if relevance == "base" and self.base_compressor is None:
            raise ConfigError(
                "relevance='base' needs the base SVLM: load with base_svlm=<Qwen3-VL-2B-Instruct folder> "
                "(CLI: --base-svlm DIR)"
            )
        sampling = self.sampling(sampling, **split_sampling(options))
        if max_context is not None and (
            isinstance(max_context, bool) or not isinstance(max_context, int) or max_context < 1
        ):
            raise ConfigError(f"max_context must be a positive number of tokens or None, got {max_context!r}")
        given = {key: value for key, value in (("budget", budget), ("k_min", k_min)) if value is not None}
        check_model_settings(given, "")  # before decoding: budget=True or 0 is refused, not coerced
        model = self.model
        timings: dict[str, float] = {}
        reused: list[str] = []
        start = time.perf_counter()
        video_key = None
        if self.reuse_last_video and frames is None and isinstance(video, (str, Path)):
            video_key = (str(video), *file_identity(video), sampling)
        streamed = None
        if video_key is not None and video_key == self._video_key:
            segments, num_frames, duration, source, real_fps = self._decoded
            reused.append("decode")
        elif overlap and video_key is None and compressed is None and isinstance(video, (str, Path)):
            from tempo_kit.inference.overlap import compress_overlapped

            streamed = compress_overlapped(
                self, video, query if compressor_query is None else compressor_query, sampling=sampling,
                relevance=relevance, relevance_prompt=relevance_prompt,
            )
            segments, compressed = streamed.segments, streamed.compressed
            num_frames, duration, source, real_fps = (
                streamed.num_frames, streamed.duration, streamed.source, streamed.real_fps
            )
        else:
            decoded = self._segments(video, frames, sampling=sampling, frame_times=frame_times, progress=progress)
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
            compressed = self.compress(
                segments, svlm_query, relevance=relevance, relevance_prompt=relevance_prompt, progress=progress
            )
            if video_key is not None:
                self._compressed[compress_key] = compressed
        synchronize(model)
        timings["compress"] = time.perf_counter() - tick
        if streamed is not None:
            timings.update(streamed.timings)

        batch = inference_batch(model.tokenizer, [segments], [query])
        batch.queries = [svlm_query]
        # allocation, reduction, assembly and the LLM, on the memory computed above
        out = model.generate(
            batch,
            budget=budget,
            k_min=k_min,
            reduction=reduction,
            allocator=allocator,
            max_context=max_context,
            max_new_tokens=max_new_tokens,
            compressed=compressed,
            **options,
        )
        timings.update({phase: out.timings[phase] for phase in ("allocate", "assemble", "generate")})
        timings["total"] = time.perf_counter() - start
        config = model.config
        spec = config.allocator if allocator is None else allocator
        settings = {
            "allocator": {"name": spec} if isinstance(spec, str) else dict(spec),
            "reduction": config.reduction_name if reduction is None else reduction,
            "relevance": relevance,
            "relevance_prompt": relevance_prompt or "model default",
            **sampling.to_dict(),
            "real_fps": real_fps,
            "max_context": config.max_context if max_context is None else max_context,
            "max_new_tokens": max_new_tokens,
            "overlap": streamed is not None,  # decoded ahead of the compressor (not just asked for)
            "overlap_chunks": streamed.chunk_sizes if streamed is not None else None,  # segments each
        }
        describe = getattr(model.compressor, "describe_inputs", None)
        return InferenceResult(
            answer=out.texts[0],
            query=query,
            video=source,
            allocation=out.allocations[0],
            num_frames=num_frames,
            duration=duration,
            window=sampling.window,
            timings=timings,
            settings=settings,
            reused=tuple(reused),
            svlm_inputs=streamed.svlm_inputs if streamed is not None else None if describe is None else describe(segments),
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
            "prompt": relevance_system_prompt(prompt),
        }
    )
