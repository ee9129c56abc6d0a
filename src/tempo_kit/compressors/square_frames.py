"""Frames as the square-image VLM families see them: resized to the vision tower's square, normalised.

InternVL 3, LLaVA-OneVision and SmolVLM2 all turn each frame of a segment into one square image
(``resize → × rescale → (x - mean) / std``, their processors' steps), reading the size, mean, std
and rescale factor from the checkpoint's processor file. That rule lives here once, as
:class:`PixelNormaliser`; the record of one segment (its slot, frame count and pixels) is
:class:`SquareFrames`, shared by the families whose sequence needs nothing more (SmolVLM2 keeps
its own record, which carries each frame's time for its time stamps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tempo_kit.types import Segments
from tempo_kit.video.patchify import resize_frames

#: The processors' rescale factor where a checkpoint's file does not say (uint8 → [0, 1]).
RESCALE_FACTOR = 1 / 255


@dataclass
class SquareFrames:
    """One segment as a square-frame family sees it: ``pixels`` ``[F, 3, S, S]`` (``None`` when only counted)."""

    slot: str
    count: int
    pixels: Tensor | None = None


class PixelNormaliser:
    """A segment's frames → ``[F, 3, H, W]`` float pixels, as the family's processor makes them.

    Args:
        size: ``(height, width)`` of the vision tower's input.
        mean: per-channel mean, subtracted after rescaling.
        std: per-channel standard deviation, divided by.
        rescale: factor applied to the resized uint8 values before normalising.
    """

    def __init__(self, size: tuple[int, int], mean: Sequence[float], std: Sequence[float], rescale: float) -> None:
        self.size = size
        # plain tensors on the CPU, also when the compressor is built on the meta device
        self.mean = torch.tensor(mean, device="cpu").view(3, 1, 1)
        self.std = torch.tensor(std, device="cpu").view(3, 1, 1)
        self.rescale = float(rescale)

    @classmethod
    def from_processor(
        cls, processor: Mapping[str, Any], size: tuple[int, int], mean: Sequence[float], std: Sequence[float]
    ) -> PixelNormaliser:
        """The processor file's ``image_mean``, ``image_std`` and ``rescale_factor``; the given
        defaults (the family's released processor's) where it is silent."""
        return cls(
            size,
            processor.get("image_mean", mean),
            processor.get("image_std", std),
            processor.get("rescale_factor", RESCALE_FACTOR),
        )

    def __call__(self, segments: Segments, j: int, device: torch.device | str | None = None) -> Tensor:
        """Segment ``j``'s frames the VLM sees (``Segments.frame_count``), normalised on ``device``."""
        frames = segments.frames[j, : segments.frame_count(j)].to(device).permute(0, 3, 1, 2).float()
        frames = resize_frames(frames, *self.size) * self.rescale
        return (frames - self.mean.to(frames.device)) / self.std.to(frames.device)
