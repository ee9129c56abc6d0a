"""The typed records that cross component boundaries, all in one place.

Read this module to learn the kit's contracts: what the data pipeline hands the model
(:class:`Segments`, :class:`TempoBatch`), what a compressor returns (:class:`CompressorOutput`)
and what allocation produces (:class:`Allocation`). They are plain dataclasses of tensors so any
training loop can build or consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch
from torch import Tensor

from tempo_kit.errors import ConfigError

SampleKind = Literal["video", "image", "text"]

#: Placeholder id in decoder ``input_ids`` marking where the visual sequence is inserted
#: (the LLaVA convention the released implementation inherits). Never a real vocabulary id.
VISUAL_PLACEHOLDER_ID = -200

#: Label value ignored by the cross-entropy loss (PyTorch and Hugging Face convention).
IGNORE_INDEX = -100


@dataclass
class Segments:
    """One sample's visual input, cut into fixed-length windows of frames.

    Attributes:
        frames: uint8 ``[S, F, H, W, 3]`` RGB frames, already resized (long edge ≤ 512 px,
            sides multiples of 16). ``F`` is the window length (4 in training, 8 at inference);
            an image is one segment of ``F = 1`` frame.
        frame_times: float ``[S, F]`` absolute time in seconds of every frame
            (frame index / container fps); the compressor's time tags come from these.
        times: float ``[S]`` the time tag of each segment handed to the LLM (its centre).
        kind: ``"video"``, ``"image"`` or ``"text"``. A text sample carries a blank image so
            every parameter takes part in each step; its memory never reaches the LLM.
        source: where the frames came from (file path), for messages and reports.
        lengths: optional long ``[S]``: frames of each window the SVLM should see,
            ``frames[i, :lengths[i]]``. Only a video's last window can be shorter than ``F``; its
            missing frames repeat its last frame so the tensor stays rectangular, and a lone last
            frame counts 2 (compatibility §1). ``None`` means every window is full.
    """

    frames: Tensor
    frame_times: Tensor
    times: Tensor
    kind: SampleKind = "video"
    source: str | None = None
    lengths: Tensor | None = None

    def __post_init__(self) -> None:
        if self.frames.ndim != 5 or self.frames.shape[-1] != 3:
            raise ValueError(
                f"Segments.frames must be [S, F, H, W, 3] RGB, got shape {tuple(self.frames.shape)}"
                + (f" for {self.source}" if self.source else "")
            )
        num_segments, window = self.frames.shape[:2]
        if tuple(self.frame_times.shape) != (num_segments, window):
            raise ValueError(
                f"Segments.frame_times must be [S, F] = {(num_segments, window)}, got {tuple(self.frame_times.shape)}"
            )
        times = self.frame_times.double()
        if times.numel() and (
            not bool(torch.isfinite(times).all())
            or bool((times.diff(dim=1) < 0).any())  # frames of a segment in time order
            or bool((times[:, 0].diff() < 0).any())  # segments in time order (they may overlap)
        ):
            raise ConfigError(
                "Segments.frame_times must be finite seconds that never decrease (frame order), got "
                f"{[round(t, 3) for t in times.reshape(-1).tolist()[:12]]}"
                + (f" for {self.source}" if self.source else "")
            )
        if tuple(self.times.shape) != (num_segments,):
            raise ValueError(f"Segments.times must be [S] = [{num_segments}], got {tuple(self.times.shape)}")
        if self.lengths is not None and tuple(self.lengths.shape) != (num_segments,):
            raise ValueError(
                f"Segments.lengths must be [S] = [{num_segments}], got {tuple(self.lengths.shape)}"
            )

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def window(self) -> int:
        return self.frames.shape[1]

    def frame_count(self, j: int) -> int:
        """Frames of window ``j`` the SVLM sees: ``lengths[j]``, or the whole window."""
        return self.window if self.lengths is None else int(self.lengths[j])

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of every frame."""
        return self.frames.shape[2], self.frames.shape[3]

    def slice(self, start: int, stop: int) -> Segments:
        """Segments ``start:stop`` of this sample, every per-segment field sliced."""
        return replace(
            self,
            frames=self.frames[start:stop],
            frame_times=self.frame_times[start:stop],
            times=self.times[start:stop],
            lengths=None if self.lengths is None else self.lengths[start:stop],
        )

    def to(self, device: torch.device | str) -> Segments:
        return replace(
            self,
            frames=self.frames.to(device),
            frame_times=self.frame_times.to(device),
            times=self.times.to(device),
            lengths=None if self.lengths is None else self.lengths.to(device),
        )


@dataclass
class CompressorOutput:
    """What a :class:`~tempo_kit.compressors.Compressor` returns for a batch of samples.

    Attributes:
        memory: ``[S_total, k_max, d_c]`` memory tokens of every segment, samples concatenated in
            order.
        relevance: ``[S_total]`` float32 relevance in (0, 1), or ``None`` for a query-agnostic
            compressor.
        num_segments: segments per sample, so ``memory.split(num_segments)`` recovers samples.
        projected: whether ``memory`` is already in the decoder's width (a feature store's,
            projected when it was stored), so that the projector is skipped; a compressor's
            output never is.
    """

    memory: Tensor
    relevance: Tensor | None
    num_segments: list[int]
    projected: bool = False

    def __post_init__(self) -> None:
        if self.memory.ndim != 3:
            raise ValueError(f"CompressorOutput.memory must be [S, k_max, d], got {tuple(self.memory.shape)}")
        if sum(self.num_segments) != self.memory.shape[0]:
            raise ValueError(
                f"num_segments {self.num_segments} sums to {sum(self.num_segments)} but memory has "
                f"{self.memory.shape[0]} segments"
            )
        if self.relevance is not None and tuple(self.relevance.shape) != (self.memory.shape[0],):
            raise ValueError(
                f"relevance must be [S] = [{self.memory.shape[0]}], got {tuple(self.relevance.shape)}"
            )

    def split(self) -> list[tuple[Tensor, Tensor | None]]:
        """Per-sample ``(memory [S_i, k_max, d], relevance [S_i] | None)``."""
        memories = self.memory.split(self.num_segments)
        if self.relevance is None:
            return [(m, None) for m in memories]
        return list(zip(memories, self.relevance.split(self.num_segments)))


@dataclass
class Allocation:
    """The token allocation for one sample's segments.

    Attributes:
        counts: long ``[S]`` tokens kept per segment; 0 drops the segment and its time tag.
        relevance: ``[S]`` scores the allocation was computed from (``None`` if query-agnostic).
        times: ``[S]`` segment time tags in seconds.
        budget: the visual-token budget B it had to respect (``None`` = all tokens kept).
        k_min: the minimal anchor asked for; k_max: tokens per segment available.
    """

    counts: Tensor
    relevance: Tensor | None
    times: Tensor
    budget: int | None
    k_min: int
    k_max: int

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def kept_segments(self) -> int:
        return int((self.counts > 0).sum())


@dataclass
class TempoBatch:
    """A collated batch, ready for :meth:`tempo_kit.model.TempoModel.forward`.

    Attributes:
        segments: per-sample visual input (a text-only sample carries a blank image,
            ``kind="text"``).
        queries: per-sample compressor query (training: the human turns joined as
            ``Context turn 1: …``; inference: the question).
        input_ids: long ``[B, L]`` decoder prompt ids, right-padded, with one
            :data:`VISUAL_PLACEHOLDER_ID` per visual sample where the visual sequence goes.
        labels: long ``[B, L]`` targets, :data:`IGNORE_INDEX` everywhere but assistant tokens.
        attention_mask: long ``[B, L]``, 1 for real tokens.
        ids: optional sample identifiers, for logs and error messages.
        answers: optional reference answers (evaluation).
        segment_labels: optional per-sample float ``[S_i]`` relevance targets (1 = the segment
            overlaps a relevant span), ``None`` for a sample without spans; the router stage's targets.
    """

    segments: list[Segments]
    queries: list[str]
    input_ids: Tensor
    labels: Tensor
    attention_mask: Tensor
    ids: list[str] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)
    segment_labels: list[Tensor | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.segments)

    def to(self, device: torch.device | str) -> TempoBatch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        labels = [None if t is None else t.to(device) for t in self.segment_labels]
        return replace(self, segments=[s.to(device) for s in self.segments], segment_labels=labels, **moved)
