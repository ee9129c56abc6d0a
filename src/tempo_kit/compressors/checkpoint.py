"""Reading a Qwen3-VL checkpoint's processor settings (no weights).

Whether a path is a local checkpoint folder at all is :func:`tempo_kit.hub.local_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tempo_kit.errors import CheckpointError
from tempo_kit.video.patchify import (
    IMAGE_MAX_PIXELS,
    IMAGE_MIN_PIXELS,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    PatchConfig,
)

#: ``model_type`` of a Qwen3-VL checkpoint's ``config.json`` (what the SVLM compressors build).
QWEN3_VL_MODEL_TYPE = "qwen3_vl"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{str(path)!r} is not valid JSON: {error}") from error


def patch_configs(
    path: Path,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    image_min_pixels: int | None = None,
    image_max_pixels: int | None = None,
) -> tuple[PatchConfig, PatchConfig]:
    """(video, image) patch settings from the checkpoint's processor configs; arguments override.

    Missing files fall back to Qwen3-VL-2B-Instruct's values.
    """
    video = _read_json(path / "video_preprocessor_config.json")
    image = _read_json(path / "preprocessor_config.json")
    video.setdefault("size", {"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS})
    image.setdefault("size", {"shortest_edge": IMAGE_MIN_PIXELS, "longest_edge": IMAGE_MAX_PIXELS})
    return (
        PatchConfig.from_processor_dict(video, min_pixels=min_pixels, max_pixels=max_pixels),
        PatchConfig.from_processor_dict(image, min_pixels=image_min_pixels, max_pixels=image_max_pixels),
    )
