"""A :class:`~tempo_kit.data.dataset.TempoDataset` over one prepared folder (:mod:`tempo_kit.data.shards`).

The rows come from the folder's index, in annotation-file order, and every other step (the answer
check, segments, span labels, the ``on_error`` policy) is the file-based dataset's own: only
:meth:`read_clip` differs. A ``bytes`` payload is decoded from a temporary file, because the video
decoders read by path, exactly as the file-based loader decodes the original file; a ``frames``
payload is the stored uint8 frames, no decoding. Map-style, so the kit's resumable sampler and the
mixture work on shards as on annotation files.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tempo_kit.data.annotations import Record, parse_row
from tempo_kit.data.dataset import TempoDataset
from tempo_kit.data.shards import ShardError, check_geometry, local_copy, read_index
from tempo_kit.video import load_image, load_video
from tempo_kit.video.decode import VideoClip
from tempo_kit.video.reading import Sampling

#: Where a ``bytes`` payload is written for the decoder: memory-backed when the system has it.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None


def clip_meta(clip: VideoClip) -> dict[str, Any]:
    """Everything of a clip but its frames, as JSON (the frames go in their own member)."""
    return {
        "timestamps": clip.timestamps.tolist(),
        "indices": clip.indices.tolist(),
        "fps": clip.fps,
        "duration": clip.duration,
        "real_fps": clip.real_fps,
        "num_source_frames": clip.num_source_frames,
        "kind": clip.kind,
        "preprocessing": clip.preprocessing,
    }


def clip_from(meta: dict[str, Any], frames: torch.Tensor, source: str) -> VideoClip:
    return VideoClip(
        frames=frames,
        timestamps=torch.tensor(meta["timestamps"], dtype=torch.float64),
        indices=torch.tensor(meta["indices"], dtype=torch.int64),
        fps=meta["fps"],
        duration=meta["duration"],
        source=source,
        real_fps=meta["real_fps"],
        num_source_frames=meta["num_source_frames"],
        kind=meta["kind"],
        preprocessing=meta["preprocessing"],
    )


class ShardDataset(TempoDataset):
    """The rows of the prepared folder ``location`` (a path or a URL; remote shards are cached in
    ``cache``), read with ``sampling`` as :class:`TempoDataset` reads files.

    Raises:
        ShardError: the folder is incomplete, mixes prepare runs, or cannot be reached.
        ConfigError: a ``frames`` folder was prepared with another frame geometry than ``sampling``.
    """

    def __init__(self, location: str, *, sampling: Sampling, cache: str | Path | None = None, **kwargs: Any):
        index = read_index(location, cache)
        check_geometry(index, sampling.load_arguments(), location)
        self.location, self.cache, self.payload = location, cache, index["payload"]
        self.shard_bytes = {shard["name"]: shard["bytes"] for shard in index["shards"]}
        self.entries: dict[str, tuple[str, dict]] = {}
        records = []
        for shard in index["shards"]:
            for entry in shard["samples"]:
                record = parse_row(entry["row"], entry["where"])
                self.entries[entry["where"]] = (shard["name"], entry)
                records.append(record)
        super().__init__(records, None, sampling=sampling, **kwargs)
        self.counts = index["counts"]

    def _payload(self, record: Record) -> tuple[bytes, dict]:
        shard, entry = self.entries[record.where]
        tar = local_copy(self.location, f"{shard}.tar", self.cache, self.shard_bytes[shard])
        with open(tar, "rb") as handle:
            handle.seek(entry["offset"])
            data = handle.read(entry["size"])
        if len(data) != entry["size"]:
            raise ShardError(f"{tar} ends inside {entry['member']}: the shard is damaged; prepare the folder again")
        return data, entry

    def read_clip(self, record: Record) -> VideoClip | None:
        if record.kind == "text":
            return None
        data, entry = self._payload(record)
        where = f"{self.location}:{entry['member']}"
        if self.payload == "frames":
            frames = torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False))
            return clip_from(entry["clip"], frames, where)
        suffix = Path(entry["member"]).suffix
        with tempfile.NamedTemporaryFile(suffix=suffix, dir=SCRATCH) as scratch:
            scratch.write(data)
            scratch.flush()
            if record.kind == "video":
                clip = load_video(scratch.name, **self.sampling.load_arguments())
            else:
                clip = load_image(scratch.name, max_long_edge=self.image_max_long_edge)
        clip.source = where
        return clip

    def media_path(self, record: Record) -> Path:
        """Where a skip message points: the row's payload inside its shard."""
        return Path(f"{self.location}/{self.entries[record.where][1]['member']}")
