"""A map-style dataset of annotation rows → decoded, segmented samples.

Each item is a :class:`Sample`: the media as :class:`~tempo_kit.types.Segments` (video windows,
one image segment, or the blank image of a text-only sample), the conversation, and the row's
answer and metadata. A sample whose media cannot be used follows the ``on_error`` policy: ``raise``
stops with the file and reason; ``skip`` records it and serves the next row instead, trying at most
``max_replacements`` rows before giving up (never an endless retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor
from torch.utils.data import Dataset

from tempo_kit.data.annotations import AnnotationError, Record
from tempo_kit.data.skips import SkipLog, check_on_error
from tempo_kit.data.spans import parse_spans, segment_bounds, segment_labels
from tempo_kit.errors import ConfigError, MediaError, TempoKitError
from tempo_kit.model.prompts import Turn
from tempo_kit.types import Segments
from tempo_kit.video import blank_image_segments, load_image, load_video, make_segments
from tempo_kit.video.options import DEFAULT_PREPROCESSING
from tempo_kit.video.reading import Sampling

if TYPE_CHECKING:
    from tempo_kit.video.decode import VideoClip

#: Consecutive bad rows tolerated before a skip-mode dataset gives up.
DEFAULT_MAX_REPLACEMENTS = 16


@dataclass
class Sample:
    """One dataset item, ready for :class:`~tempo_kit.data.collate.TempoCollator`."""

    id: str
    segments: Segments
    turns: list[Turn]
    answer: str | None = None
    options: list[str] | None = None
    question: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: float ``[S]``: 1 for segments overlapping the row's ``relevant_spans`` (see
    #: :mod:`tempo_kit.data.spans`); ``None`` when the row has no spans or no video
    segment_labels: Tensor | None = None

    @property
    def kind(self) -> str:
        return self.segments.kind


class TempoDataset(Dataset):
    """Annotation records + a media root → :class:`Sample` items.

    Args:
        records: checked annotation rows (:func:`~tempo_kit.data.annotations.load_annotations`).
        media_root: folder the rows' ``video``/``image`` paths are relative to.
        sampling: how videos are read (:class:`~tempo_kit.video.reading.Sampling`; default
            :meth:`Sampling.training`: windows of 4, the released geometry).
        image_max_long_edge: image resize (``None``: native resolution, as the paper).
        on_error: ``"skip"`` or ``"raise"``.
        skip_log: where skipped samples are recorded.
        require_answer: rows must end with an assistant turn (training); else a bad row.
        cache_clips: keep every decoded clip in memory after its first read, so later epochs
            decode nothing (a DataLoader worker keeps its cache while the loader keeps its
            workers). For datasets that fit in memory: the demo's 256 videos of 8 frames at
            128x96 hold 75 MB.
    """

    def __init__(
        self,
        records: Sequence[Record],
        media_root: str | Path | None = None,
        *,
        sampling: Sampling | None = None,
        image_max_long_edge: int | None = None,
        on_error: str = "skip",
        skip_log: SkipLog | None = None,
        require_answer: bool = True,
        max_replacements: int = DEFAULT_MAX_REPLACEMENTS,
        cache_clips: bool = False,
    ):
        check_on_error(on_error)
        if not isinstance(cache_clips, bool):
            raise ConfigError(f"data.cache_clips must be true or false, got {cache_clips!r}")
        self.records = list(records)
        self.media_root = Path(media_root) if media_root is not None else None
        self.sampling = Sampling.training() if sampling is None else sampling.with_preprocessing(DEFAULT_PREPROCESSING)
        self.image_max_long_edge = image_max_long_edge
        self.on_error = on_error
        self.skip_log = skip_log if skip_log is not None else SkipLog()
        self.require_answer = require_answer
        self.max_replacements = max_replacements
        #: decoded clips by media file when ``cache_clips`` (``None``: every read decodes); rows
        #: that share a file (its multiple-choice and open questions) share one decode
        self.clip_cache: dict[tuple[str, str | None], VideoClip | None] | None = {} if cache_clips else None

    def __len__(self) -> int:
        return len(self.records)

    def media_path(self, record: Record) -> Path:
        path = Path(record.media)
        return path if path.is_absolute() or self.media_root is None else self.media_root / path

    def read_clip(self, record: Record) -> VideoClip | None:
        """The row's decoded frames (``None`` for a text row): the one place a dataset reads media,
        so a dataset over prepared shards (:mod:`tempo_kit.data.shards`) only replaces this."""
        if record.kind == "text":
            return None
        path = self.media_path(record)
        if record.kind == "video":
            return load_video(path, **self.sampling.load_arguments())
        return load_image(path, max_long_edge=self.image_max_long_edge)

    def cached_clip(self, record: Record) -> VideoClip | None:
        """:meth:`read_clip`, answered from ``clip_cache`` after the row's first successful read."""
        if self.clip_cache is None:
            return self.read_clip(record)
        key = (record.kind, record.media)
        if key not in self.clip_cache:
            self.clip_cache[key] = self.read_clip(record)  # a read that raises caches nothing
        return self.clip_cache[key]

    def load(self, record: Record) -> Sample:
        """Build one sample; raises :class:`TempoKitError` naming the row and file on bad input."""
        if self.require_answer and record.turns[-1].role != "assistant":
            raise AnnotationError("the conversation must end with a gpt turn to be trained on")
        segments, labels = self.segments_of(record)
        return Sample(
            id=record.id,
            segments=segments,
            turns=list(record.turns),
            answer=record.answer,
            options=record.options,
            question=record.question,
            meta=dict(record.meta),
            segment_labels=labels,
        )

    def segments_of(self, record: Record) -> tuple[Any, Tensor | None]:
        """The row's segments and their relevance labels (``None`` without ``relevant_spans``):
        what a dataset over other payloads (the stage-3 feature store) replaces."""
        clip = self.cached_clip(record)
        if clip is None:
            return blank_image_segments(), None
        segments = make_segments(clip, self.sampling.window, time_base=self.sampling.time_base)
        labels = None
        if record.relevant_spans is not None and record.kind == "video":
            spans = parse_spans(record.relevant_spans, "relevant_spans", clip.duration)
            labels = segment_labels(segment_bounds(segments, clip.duration), spans)
        return segments, labels

    def __getitem__(self, index: int) -> Sample:
        for attempt in range(self.max_replacements + 1):
            record = self.records[(index + attempt) % len(self.records)]
            try:
                return self.load(record)
            except TempoKitError as error:
                if self.on_error == "raise":
                    raise type(error)(f"{record.where} (id {record.id}): {error}") from error
                path = str(self.media_path(record)) if record.media else None
                self.skip_log.add(record.where, path, f"{type(error).__name__}: {error}")
        raise MediaError(
            f"{self.max_replacements + 1} consecutive samples from row {index} failed to load "
            f"(see the warnings above; {self.skip_log.summary()}); check the media root and the files"
        )
