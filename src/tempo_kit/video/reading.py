""":class:`Sampling`: how a video is read, the one record data, inference and evaluation share.

Frames per second, the frame-count bounds, the window, the frame geometry, the resize path, the
time base and the decoder: one declaration, one set of checks. Presets carry the released
defaults of each place (training window 4; inference min 4 frames; evaluation min 8 frames).
Torch-free, so the command-line parsers can read its defaults without loading a model stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tempo_kit.defaults import (  # noqa: F401 (DEFAULT_BACKEND, EVAL_MIN_FRAMES re-exported)
    DEFAULT_BACKEND,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_LONG_EDGE,
    DEFAULT_MIN_FRAMES,
    DEFAULT_SAMPLE_FPS,
    EVAL_MIN_FRAMES,
    INFERENCE_WINDOW,
    SAMPLING_PRESETS,
)
from tempo_kit.errors import ConfigError, check_choice, did_you_mean
from tempo_kit.video.options import (
    DEFAULT_RESIZE,
    DEFAULT_TIME_BASE,
    PREPROCESSING_MODES,
    RESIZE_MODES,
    TIME_BASES,
)


@dataclass(frozen=True)
class Sampling:
    """How frames are taken from a video and cut into segments.

    Attributes:
        fps: frames sampled per second of video (compatibility §1: 2); for in-memory frames, the
            rate they were sampled at (the time base of their tags).
        min_frames: fewest frames sampled (released: 4 at inference, 8 in evaluation).
        max_frames: most frames sampled (released: 1024 at inference).
        window: frames per segment (paper §4.1: 4 in training, 8 at inference).
        preprocessing: frame geometry, ``"released"`` or ``"qwen3_vl"``; ``None`` takes the
            model's own (the geometry it was trained with).
        resize: ``"pil"`` (the exact released pixels), ``"decoder"`` (fast) or ``"torch"``.
        time_base: time tags from the real sampling rate (``"released"``) or the container's
            timestamps (``"container"``).
        backend: the video decoder (``"decord"`` or ``"pyav"``).
        max_long_edge: the long edge frames are resized to in the ``qwen3_vl`` geometry (512 px;
            the released geometry fixes its own first resize); ``None`` keeps the native size.
    """

    # ``metadata``: the command-line switch each field becomes (``--max-frames``; its type,
    # choices and help), so every verb's sampling switches are generated from this declaration.
    fps: float = field(default=DEFAULT_SAMPLE_FPS, metadata={"type": float, "help": "frames per second sampled"})
    min_frames: int = field(default=DEFAULT_MIN_FRAMES, metadata={"type": int, "help": "fewest frames sampled"})
    max_frames: int = field(default=DEFAULT_MAX_FRAMES, metadata={"type": int, "help": "most frames sampled"})
    window: int = field(default=INFERENCE_WINDOW, metadata={"type": int, "help": "frames per segment"})
    preprocessing: str | None = field(
        default=None,
        metadata={
            "type": str,
            "choices": PREPROCESSING_MODES,
            "help": "frame geometry: the released pipeline's or Qwen3-VL's own (default: the model's)",
        },
    )
    resize: str = field(
        default=DEFAULT_RESIZE,
        metadata={"type": str, "choices": RESIZE_MODES, "help": "pil: exact released pixels; decoder: faster"},
    )
    time_base: str = field(
        default=DEFAULT_TIME_BASE,
        metadata={
            "type": str,
            "choices": TIME_BASES,
            "help": "time tags from the real sampling rate (released) or the container's timestamps",
        },
    )
    backend: str = field(default=DEFAULT_BACKEND, metadata={"type": str, "help": "video decoder backend (decord or pyav)"})
    max_long_edge: int | None = field(
        default=DEFAULT_MAX_LONG_EDGE, metadata={"type": int, "help": "long edge in the qwen3_vl geometry, px"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not self.fps > 0:
            raise ConfigError(f"fps={self.fps!r} must be > 0 frames sampled per second (the paper uses 2)")
        for key in ("min_frames", "max_frames", "window"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}={value!r} must be a positive number of frames (at least 1)")
        if self.min_frames > self.max_frames:
            raise ConfigError(
                f"min_frames={self.min_frames} exceeds max_frames={self.max_frames}; "
                "at least min_frames frames are sampled, so raise max_frames or lower min_frames"
            )
        if self.preprocessing is not None:
            check_choice(self.preprocessing, PREPROCESSING_MODES, "preprocessing")
        check_choice(self.resize, RESIZE_MODES, "resize")
        check_choice(self.time_base, TIME_BASES, "time_base")
        if self.max_long_edge is not None and (
            isinstance(self.max_long_edge, bool) or not isinstance(self.max_long_edge, int) or self.max_long_edge < 1
        ):
            raise ConfigError(f"max_long_edge={self.max_long_edge!r} must be a positive number of pixels or null")
        if not isinstance(self.backend, str) or not self.backend:
            raise ConfigError(f"backend={self.backend!r} must name a video backend, e.g. {DEFAULT_BACKEND!r}")

    # ------------------------------------------------------------------ building
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order (the keyword arguments that say how a video is read)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def inference(cls, **values: Any) -> Sampling:
        """The released inference script's defaults (min 4 frames, window 8), ``values`` on top."""
        return cls(**{**SAMPLING_PRESETS["inference"], **values})

    @classmethod
    def evaluation(cls, **values: Any) -> Sampling:
        """The released evaluation's defaults (min 8 frames, window 8), ``values`` on top."""
        return cls(**{**SAMPLING_PRESETS["evaluation"], **values})

    @classmethod
    def training(cls, **values: Any) -> Sampling:
        """Training defaults (window 4, the released geometry), ``values`` on top."""
        return cls(**{**SAMPLING_PRESETS["training"], **values})

    def updated(self, values: Mapping[str, Any], where: str = "") -> Sampling:
        """A copy with ``values`` (names checked: an unknown one fails with a did-you-mean)."""
        names = self.names()
        for key in values:
            if key not in names:
                raise ConfigError(
                    f"{where}{key!r} is not a sampling setting{did_you_mean(key, names)}; "
                    f"known: {', '.join(names)}"
                )
        return replace(self, **dict(values))

    def with_preprocessing(self, model_preprocessing: str) -> Sampling:
        """This record with the model's geometry filled in where none was chosen."""
        return self if self.preprocessing is not None else replace(self, preprocessing=model_preprocessing)

    # ------------------------------------------------------------------ using
    def load_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~tempo_kit.video.load_video` this record sets."""
        return {
            "fps": self.fps,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
            "preprocessing": self.preprocessing or PREPROCESSING_MODES[0],
            "resize": self.resize,
            "max_long_edge": self.max_long_edge,
            "backend": self.backend,
            # only when not the default: prepared shards fingerprint these arguments, and the
            # released reading must keep the fingerprints it always had
            **({"time_base": self.time_base} if self.time_base != DEFAULT_TIME_BASE else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_sampling(options: dict[str, Any]) -> dict[str, Any]:
    """Take the sampling settings out of ``options`` (keyword arguments); returns them."""
    return {key: options.pop(key) for key in Sampling.names() if key in options}
