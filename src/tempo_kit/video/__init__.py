"""Video decoding, frame sampling, segmenting and the frames-to-patches transform.

``load_video`` → :class:`VideoClip` (sampled, resized frames with real timestamps) →
``make_segments`` → :class:`~tempo_kit.types.Segments`. Images go through ``load_image``; text-only
samples carry ``blank_image_segments()``.
"""

from tempo_kit.lazy import lazy_exports

#: name → the module that defines it, imported on first use
_EXPORTS = {
    "INFERENCE_WINDOW": "tempo_kit.video.segments",
    "TRAIN_WINDOW": "tempo_kit.video.segments",
    "VIDEO_BACKENDS": "tempo_kit.registry",
    "VideoClip": "tempo_kit.video.decode",
    "VideoSource": "tempo_kit.video.backends",
    "blank_image_segments": "tempo_kit.video.segments",
    "load_image": "tempo_kit.video.images",
    "load_video": "tempo_kit.video.decode",
    "make_segments": "tempo_kit.video.segments",
    "num_sampled_frames": "tempo_kit.video.sampling",
    "open_video": "tempo_kit.video.backends",
    "register_backend": "tempo_kit.video.backends",
    "resize_frames": "tempo_kit.video.decode",
    "resized_size": "tempo_kit.video.sampling",
    "sample_indices": "tempo_kit.video.sampling",
    "segment_starts": "tempo_kit.video.segments",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
