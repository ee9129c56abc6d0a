"""Patchifying the segments of a micro-batch for the Qwen3-VL vision tower.

A micro-batch is a list of ``(sample, segment)`` pairs that may cross sample boundaries; segments
of one sample share a frame size and are patchified together. Video segments follow the video
processor's rules and get one time per temporal patch; images (and the blank image of a text
sample) follow the image processor's rules and take Qwen3-VL's image slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import torch
from torch import Tensor

from tempo_kit.errors import ConfigError
from tempo_kit.types import Segments
from tempo_kit.video.patchify import PatchConfig, patchify, processor_size, temporal_patch_times


@dataclass
class SegmentPatches:
    """One segment's vision-tower input.

    Attributes:
        slot: ``"video"`` or ``"image"`` (which Qwen3-VL placeholder the sequence uses).
        pixel_values: ``[grid_t·grid_h·grid_w, 3·2·16·16]`` float32 patches.
        grid_thw: long ``[3]``.
        times: temporal-patch times in seconds (video only).
        tokens_per_patch: merged visual tokens per temporal patch, ``grid_h·grid_w / merge²``.
        seconds_per_patch: seconds one temporal patch spans (temporal patch size × the frame
            step; video only), what Qwen2.5-VL's absolute-time M-RoPE scales by.
    """

    slot: str
    pixel_values: Tensor
    grid_thw: Tensor
    times: list[float] | None
    tokens_per_patch: int
    seconds_per_patch: float | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.grid_thw[0]) * self.tokens_per_patch


def slot_of(segments: Segments, index: int) -> str:
    """The visual slot of a sample's segments; images and text samples must hold one frame."""
    if segments.kind == "video":
        return "video"
    if segments.kind in ("image", "text"):
        if segments.window != 1:
            raise ConfigError(
                f"sample {index} ({segments.source or segments.kind}) is kind={segments.kind!r} but its "
                f"segments hold {segments.window} frames; an image is one segment of one frame"
            )
        return "image"
    raise ConfigError(f"sample {index} has unknown kind {segments.kind!r}; use 'video', 'image' or 'text'")


def patch_segments(
    segments: Sequence[Segments],
    items: Sequence[tuple[int, int]],
    video_config: PatchConfig,
    image_config: PatchConfig,
    device: torch.device | str | None = None,
    video_rule: str = "video",
) -> list[SegmentPatches]:
    """Patches for each ``(sample, segment)`` pair of ``items``, in order.

    ``video_rule`` is the resize rule of video segments: ``"video"`` (Qwen3-VL's video processor
    bounds the whole clip) or ``"image"`` (Qwen2-VL's video processor bounds each frame). Frames move to ``device`` (the model's) as uint8 before resizing, which is both the smaller
    transfer and, on a GPU, the faster resize.
    """
    out: list[SegmentPatches] = []
    for sample, group in groupby(items, key=lambda item: item[0]):
        picks = [j for _, j in group]
        source = segments[sample]
        slot = slot_of(source, sample)
        config = video_config if slot == "video" else image_config
        by_segment: dict[int, SegmentPatches] = {}
        for length, same_length in _by_length(source, picks).items():
            index = torch.tensor(same_length, device=source.frames.device)
            frames = source.frames.index_select(0, index)[:, :length]
            frame_times = source.frame_times.index_select(0, index.to(source.frame_times.device))[:, :length]
            rule = video_rule if slot == "video" else "image"
            patches = patchify(frames if device is None else frames.to(device), frame_times, config, rule=rule)
            steps = (frame_times[:, 1] - frame_times[:, 0]).tolist() if length > 1 else [0.0] * len(same_length)
            rows = int(patches.grid_thw[0].prod())
            per_patch = int(patches.grid_thw[0, 1] * patches.grid_thw[0, 2]) // config.merge_size**2
            for k, j in enumerate(same_length):
                by_segment[j] = SegmentPatches(
                    slot=slot,
                    pixel_values=patches.pixel_values[k * rows : (k + 1) * rows],
                    grid_thw=patches.grid_thw[k],
                    times=patches.timestamps[k].tolist() if slot == "video" else None,
                    tokens_per_patch=per_patch,
                    seconds_per_patch=float(steps[k]) * config.temporal_patch_size if slot == "video" else None,
                )
        out.extend(by_segment[j] for j in picks)
    return out


@dataclass(frozen=True)
class SegmentGrid:
    """What the vision tower will see of one segment, known before any pixel is touched.

    Attributes:
        slot: ``"video"`` or ``"image"``.
        grid_thw: ``(grid_t, grid_h, grid_w)`` in patches, as :func:`patchify` will produce it.
        times: temporal-patch times in seconds (video only), unrounded as the time tags use them.
        tokens_per_patch: merged visual tokens per temporal patch, ``grid_h·grid_w / merge²``.
    """

    slot: str
    grid_thw: tuple[int, int, int]
    times: list[float] | None
    tokens_per_patch: int

    @property
    def num_patches(self) -> int:
        """Vision-tower patches (before the merge): ``grid_t·grid_h·grid_w``."""
        return self.grid_thw[0] * self.grid_thw[1] * self.grid_thw[2]


def segment_grids(
    segments: Segments,
    video_config: PatchConfig,
    image_config: PatchConfig,
    index: int = 0,
    video_rule: str = "video",
) -> list[SegmentGrid]:
    """The :class:`SegmentGrid` of every segment of one sample (``index`` names it in errors;
    ``video_rule`` as for :func:`patch_segments`)."""
    slot = slot_of(segments, index)
    config = video_config if slot == "video" else image_config
    height, width = segments.frame_size
    out: list[SegmentGrid] = []
    for j in range(len(segments)):
        length = segments.frame_count(j)
        new_h, new_w = processor_size(height, width, length, config, video_rule if slot == "video" else "image")
        grid = (-(-length // config.temporal_patch_size), new_h // config.patch_size, new_w // config.patch_size)
        times = None
        if slot == "video":
            times = temporal_patch_times(segments.frame_times[j : j + 1, :length], config.temporal_patch_size)
            times = [float(t) for t in times[0]]
        out.append(SegmentGrid(slot, grid, times, grid[1] * grid[2] // config.merge_size**2))
    return out


def describe_segments(
    segments: Segments, video_config: PatchConfig, image_config: PatchConfig, video_rule: str = "video"
) -> list[dict[str, object]]:
    """What the SVLM sees of each segment, without touching pixels: ``svlm_grid`` [t, h, w] in
    patches and ``frame_times``, the per-temporal-patch time tags (seconds; ``None`` for images)."""
    return [
        {
            "svlm_grid": list(grid.grid_thw),
            "frame_times": None if grid.times is None else [round(t, 3) for t in grid.times],
        }
        for grid in segment_grids(segments, video_config, image_config, video_rule=video_rule)
    ]


def _by_length(segments: Segments, picks: Sequence[int]) -> dict[int, list[int]]:
    """Group segment indices by how many of their frames the SVLM sees (``Segments.lengths``).

    Only a video's last window can be short; the SVLM sees its real frames (padded to the
    temporal patch by :func:`patchify`), not the window padding, as the released processor does.
    """
    groups: dict[int, list[int]] = {}
    for j in picks:
        length = segments.frame_count(j)
        groups.setdefault(length, []).append(j)
    return groups
