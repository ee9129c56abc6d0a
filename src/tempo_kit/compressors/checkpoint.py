"""Finding a local Qwen3-VL checkpoint and reading its processor settings.

The kit never downloads: a hub name must be fetched by the user first and passed as a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from tempo_kit.errors import CheckpointError
from tempo_kit.hub import download_command, looks_like_hub_name
from tempo_kit.video.patchify import (
    IMAGE_MAX_PIXELS,
    IMAGE_MIN_PIXELS,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    PatchConfig,
)

#: ``model_type`` of a Qwen3-VL checkpoint's ``config.json`` (what the SVLM compressors build).
QWEN3_VL_MODEL_TYPE = "qwen3_vl"


def local_checkpoint(
    pretrained: str | Path, what: str = "SVLM", model_type: str | None = QWEN3_VL_MODEL_TYPE
) -> Path:
    """``pretrained`` as an existing Hugging Face checkpoint folder, or a :class:`CheckpointError`.

    With ``model_type``, the folder's ``config.json`` must declare it: another model's folder
    (e.g. the LLM's) would otherwise build a default-size Qwen3-VL from an unrelated config.
    """
    path = Path(pretrained).expanduser()
    if not path.is_dir():
        hint = ""
        if looks_like_hub_name(str(pretrained)):
            hint = (
                f" It looks like a hub name: download it first, e.g. "
                f"`{download_command(str(pretrained))}`, "
                f"and pass that folder."
            )
        raise CheckpointError(
            f"{what} checkpoint {str(pretrained)!r} is not a local folder.{hint} "
            "The kit loads checkpoints from disk only; pass a local path."
        )
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{what} checkpoint folder {str(path)!r} has no config.json; point to a Hugging Face "
            "checkpoint folder (the one holding config.json and *.safetensors)."
        )
    found = _read_json(path / "config.json").get("model_type")
    if model_type is not None and found != model_type:
        raise CheckpointError(
            f"{what} checkpoint {str(path)!r} is a {found!r} model, not {model_type!r}: point it at a Qwen3-VL "
            "checkpoint folder (e.g. checkpoints/Qwen3-VL-2B-Instruct)"
        )
    return path


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
