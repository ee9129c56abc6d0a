"""Answer a question about a video with a saved Tempo model, and see where the tokens went.

>>> pipe = TempoPipeline.from_pretrained("checkpoints/tempo-6b-kit")   # doctest: +SKIP
>>> result = pipe.answer(video="match.mp4", query="Who scores the second goal?", budget=4096)
>>> result.answer, result.tokens_used, result.tokens_per_frame, result.timings

:meth:`TempoPipeline.answer` resolves the question's settings once
(:func:`~tempo_kit.inference.question.resolve_question`: everything checked before a frame is
decoded), picks a memory source (:mod:`~tempo_kit.inference.sources`: serial, streamed, or a
session's prefix cache; the base SVLM's relevance prior as a wrapper), and hands the memory to the
model's ``generate`` (allocation, reduction, assembly, the LLM), which times each phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.compressors.prompts import compressor_prompt_text
from tempo_kit.errors import ConfigError
from tempo_kit.inference.question import Question, resolve_question, resolve_sampling
from tempo_kit.inference.result import InferenceResult
from tempo_kit.inference.session import DEFAULT_MAX_CACHE_BYTES, VideoSession
from tempo_kit.inference.sources import BaseRelevance, LastVideo, MemorySource, SerialSource, StreamedSource
from tempo_kit.moved import moved_names
from tempo_kit.time_tags import format_time_tag
from tempo_kit.video.reading import Sampling

#: Memory tokens of the base-prior compressor: relevance is read before the first memory token
#: (causal attention), so one is enough and the base SVLM never needs Tempo's trained tokens.
BASE_PRIOR_K_MAX = 1


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
        self._last = LastVideo()

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
        return resolve_sampling(self.model.config, sampling, values)

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

    def question(self, query: str, **options: Any) -> Question:
        """The :class:`~tempo_kit.inference.question.Question` ``query`` and ``options`` make on this
        model (see :func:`~tempo_kit.inference.question.resolve_question`): checked, defaults filled."""
        question = resolve_question(self.model.config, query, **options)
        if question.relevance == "base" and self.base_compressor is None:
            raise ConfigError(
                "relevance='base' needs the base SVLM: load with base_svlm=<Qwen3-VL-2B-Instruct folder> "
                "(CLI: --base-svlm DIR)"
            )
        return question

    def source(
        self,
        video: str | Path | Any | None = None,
        *,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        overlap: bool = False,
    ) -> MemorySource:
        """The memory source :meth:`answer` uses for a video: streamed with ``overlap`` (a file read
        once; ``result.settings["overlap"]`` says whether it was), else serial (reusing the last
        video's work with ``reuse_last_video``)."""
        if overlap and not self.reuse_last_video and isinstance(video, (str, Path)):
            return StreamedSource(self.model.compressor, video)  # a decoded clip has nothing left to overlap
        return SerialSource(
            self.model.compressor,
            video,
            frames=frames,
            frame_times=frame_times,
            last=self._last if self.reuse_last_video else None,
        )

    @torch.no_grad()
    def answer(
        self,
        video: str | Path | Any | None = None,
        query: str | Question = "",
        *,
        question: Question | None = None,
        source: MemorySource | None = None,
        frames: Tensor | None = None,
        frame_times: Tensor | None = None,
        overlap: bool = False,
        progress: bool = False,
        streamer: Any = None,
        stopping_criteria: Any = None,
        **options: Any,
    ) -> InferenceResult:
        """Answer ``query`` about ``video`` (a path or a decoded clip) or ``frames``.

        Args:
            query: the question, or a :class:`~tempo_kit.inference.question.Question` (also as
                ``question=``) built by :meth:`question`.
            source: where the memory comes from, instead of ``video``/``frames`` (a session passes
                itself, :class:`~tempo_kit.inference.session.VideoSession`).
            overlap: decode the video file in a background thread, chunk by chunk, while the
                compressor works on the chunks already decoded (:mod:`~tempo_kit.inference.overlap`):
                same answer, decoded frames held per chunk, not per video.
            progress: show progress bars for decoding and compression.
            streamer: a ``transformers`` streamer that sees each new token, handed to the LLM's
                ``generate`` as it is. It watches this one answer, so it is no setting and not
                part of the question or its record.
            stopping_criteria: ``transformers`` stopping criteria that can end this answer early
                (e.g. when a client leaves), handed to ``generate`` the same way.
            options: the question's settings, resolved by :meth:`question`: ``sampling`` (a
                :class:`~tempo_kit.video.reading.Sampling` or mapping) and its fields (``fps``,
                ``min_frames``, ``max_frames``, ``window``, ``preprocessing``, ``resize``,
                ``time_base``, ``backend``, ``max_long_edge``); ``budget``, ``allocator`` (name or
                spec), ``reduction``, ``k_min``; ``relevance`` (``"trained"`` or ``"base"``, which
                needs ``base_svlm``) and ``relevance_prompt`` (``"routing"``, ``"standard"``,
                ``"qwen_default"`` or text); ``compressor_query``; ``history`` (the earlier
                turns, each a :class:`~tempo_kit.model.prompts.Turn`, read by the decoder as chat turns);
                ``max_context`` (default the model config's); ``max_new_tokens`` and the LLM's generation settings. An unknown
                keyword is refused before the video is decoded.
        """
        from tempo_kit.model import inference_batch

        if isinstance(query, Question):
            question, query = query, ""
        if question is None:
            question = self.question(query, **options)
        elif query or options:
            raise ConfigError("answer() got a Question and also a query or settings; put them in the Question")
        elif question.relevance == "base" and self.base_compressor is None:
            self.question(question.query, relevance="base")  # the same refusal
        if source is None:
            source = self.source(video, frames=frames, frame_times=frame_times, overlap=overlap)
        elif video is not None or frames is not None:
            raise ConfigError("answer() got a source and also a video or frames; pass one of them")
        if question.relevance == "base":
            source = BaseRelevance(source, self.base_compressor)
        start = time.perf_counter()
        memory = source.compress(question, progress=progress)
        batch = inference_batch(self.model.tokenizer, [memory.segments], [question.query], histories=[question.history])
        batch.queries = [question.compressor_query]
        # allocation, reduction, assembly and the LLM, on the memory computed above
        out = self.model.generate(
            batch,
            compressed=memory.compressed,
            **generation_settings(question),
            **{k: v for k, v in (("streamer", streamer), ("stopping_criteria", stopping_criteria)) if v is not None},
        )
        return self.result(question, memory, out, 0, time.perf_counter() - start)

    def result(self, question: Question, memory: Any, out: Any, row: int, seconds: float) -> InferenceResult:
        """The :class:`InferenceResult` of row ``row`` of a ``generate`` output ``out`` for
        ``question``, whose memory came from ``memory``; ``seconds`` since its compression began."""
        timings = dict(memory.timings)
        timings.update({phase: out.timings[phase] for phase in ("allocate", "assemble", "generate")})
        timings["total"] = seconds + memory.earlier_seconds
        return InferenceResult(
            answer=out.texts[row],
            query=question.query,
            video=memory.video,
            allocation=out.allocations[row],
            num_frames=memory.num_frames,
            duration=memory.duration,
            window=question.sampling.window,
            timings=timings,
            settings={**question.to_dict(), "real_fps": memory.real_fps, **memory.settings},
            reused=memory.reused,
            svlm_inputs=memory.svlm_inputs,
            svlm_tokens=memory.svlm_tokens,
            time_tags=[format_time_tag(t, self.model.config.time_tag_template) for t in out.allocations[row].times],
        )


def generation_settings(question: Question) -> dict[str, Any]:
    """The keywords of ``TempoModel.generate`` a question sets (allocation, context, the LLM's)."""
    return {
        "budget": question.budget,
        "k_min": question.k_min,
        "reduction": question.reduction,
        "allocator": question.allocator,
        "max_context": question.max_context,
        "max_new_tokens": question.max_new_tokens,
        **question.generation,
    }


def load_base_compressor(path: str | Path, dtype: str = "auto", prompt: str = "routing") -> nn.Module:
    """A ``qwen3_vl`` compressor on a base SVLM, used only for its relevance prior (Table 2D)."""
    from tempo_kit.registry import COMPRESSORS

    return COMPRESSORS.build(
        {
            "name": "qwen3_vl",
            "pretrained": str(path),
            "k_max": BASE_PRIOR_K_MAX,
            "dtype": dtype,
            "prompt": compressor_prompt_text(prompt),
        }
    )


__getattr__ = moved_names(__name__)  # old names, see tempo_kit.moved
