"""Load a still image as a one-frame clip.

The paper keeps images at native resolution (Table A, "Native"); sides are still rounded to a
multiple of the patch size, and an optional pixel cap protects memory against huge images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from tempo_kit.errors import MediaError
from tempo_kit.video.decode import VideoClip, resize_frames
from tempo_kit.video.sampling import DEFAULT_SIZE_MULTIPLE, resized_size

#: Images larger than this many pixels are scaled down (aspect kept). Qwen3-VL's image processor
#: caps images at 16384 × 32 × 32 pixels by default; the same cap is used here.
DEFAULT_MAX_IMAGE_PIXELS = 16384 * 32 * 32


def load_image(
    path: str | Path,
    *,
    max_long_edge: int | None = None,
    size_multiple: int = DEFAULT_SIZE_MULTIPLE,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> VideoClip:
    """Read an image (any PIL format, EXIF orientation applied) into a ``T = 1`` :class:`VideoClip`.

    Raises:
        MediaError: the file is missing, not an image, truncated or otherwise fails to decode.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image file not found: {path} (check the path and the media root)")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            array = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise MediaError(f"cannot read image {path}: {type(error).__name__}: {error}") from error
    height, width = array.shape[:2]
    if max_pixels is not None and height * width > max_pixels:
        scale = (max_pixels / (height * width)) ** 0.5
        cap = max(size_multiple, int(max(height, width) * scale))
        max_long_edge = cap if max_long_edge is None else min(max_long_edge, cap)
    size = resized_size(height, width, max_long_edge, size_multiple)
    frames = resize_frames(torch.from_numpy(array.copy())[None], size)
    return VideoClip(
        frames=frames,
        timestamps=torch.zeros(1, dtype=torch.float64),
        indices=torch.zeros(1, dtype=torch.long),
        fps=float("nan"),
        duration=0.0,
        source=str(path),
        num_source_frames=1,
        kind="image",
    )
