"""Video decoding, frame sampling, segmenting and the frames-to-patches transform.

``load_video`` → :class:`VideoClip` (sampled, resized frames with real timestamps) →
``make_segments`` → :class:`~tempo_kit.types.Segments`. Images go through ``load_image``; text-only
samples carry ``blank_image_segments()``.
"""

from tempo_kit.video.backends import BACKENDS, VideoSource, open_video, register_backend
from tempo_kit.video.decode import VideoClip, load_video, resize_frames
from tempo_kit.video.images import load_image
from tempo_kit.video.sampling import num_sampled_frames, resized_size, sample_indices
from tempo_kit.video.segments import (
    INFERENCE_WINDOW,
    TRAIN_WINDOW,
    blank_image_segments,
    make_segments,
    segment_starts,
)

__all__ = [
    "BACKENDS",
    "INFERENCE_WINDOW",
    "TRAIN_WINDOW",
    "VideoClip",
    "VideoSource",
    "blank_image_segments",
    "load_image",
    "load_video",
    "make_segments",
    "num_sampled_frames",
    "open_video",
    "register_backend",
    "resize_frames",
    "resized_size",
    "sample_indices",
    "segment_starts",
]
