"""The prepared-shard format: WebDataset tar shards plus one ``index.json`` with every row's place.

A prepared folder (written by ``tempo-kit prepare``, :mod:`tempo_kit.data.prepare`) holds::

    shard-00000-<run>.tar     # WebDataset layout: <key>.json (the row) + <key>.<ext> (the payload)
    shard-00000-<run>.json    # written after its tar: the shard is finished (what a rerun keeps)
    ...
    index.json                # written last: the folder is complete

``<run>`` is the prepare run's fingerprint (:func:`fingerprint`: the annotation file's bytes, the
media root, the payload, the frame geometry, the rows per shard), so a shard from another run has
another name and is never mistaken for this run's. The index lists every shard with its byte size
and every kept row with the byte range of its payload inside the tar, so a row is read with one
seek (random access: the kit's resumable sampler draws rows in any order; WebDataset's own readers
stream tars front to back and cannot). Any WebDataset reader still reads the tars.

Why this format and not another: MosaicML Streaming's MDS imports torchvision on ``import
streaming`` (its package ``__init__`` loads ``streaming.vision``) and its requirements replace the
installed torch; litdata also declares torchvision and torch. A tar needs no package at all.

Payloads: ``bytes`` stores a video/image file as it is (decoded in the DataLoader workers, as
from a folder); ``frames`` stores the frames already sampled and resized to the recipe's geometry
(uint8 ``.npy``; no decoding while training).

Remote folders (``s3://``, ``gs://``, ``https://`` ... any fsspec protocol) are read through
:func:`local_copy`: each file is downloaded once into a local cache, beside its name and renamed
into place, so DataLoader workers and ranks that fetch the same shard never see half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tempo_kit.atomic import atomic_path
from tempo_kit.errors import ConfigError, TempoKitError

#: Bumped when the layout changes; part of every fingerprint.
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
#: What a prepared folder stores for media rows.
PAYLOADS = ("bytes", "frames")
#: Annotation rows per shard unless told otherwise (a few hundred MB of video bytes at real sizes).
DEFAULT_SHARD_ROWS = 256
#: Where remote shards are cached unless ``data.shard_cache`` says otherwise.
DEFAULT_CACHE = Path.home() / ".cache" / "tempo-kit" / "shards"
#: The frame-geometry fields a ``frames`` payload fixes at prepare time.
GEOMETRY_KEYS = ("fps", "min_frames", "max_frames", "preprocessing", "resize", "max_long_edge", "backend")


class ShardError(TempoKitError):
    """A prepared folder is incomplete, mixes prepare runs, or cannot be reached."""


def fingerprint(annotation: Path, media_root: str | None, payload: str, geometry: Mapping, rows: int) -> str:
    """The prepare run's identity: 12 hex digits of everything that decides the shards' bytes."""
    digest = hashlib.sha256()
    digest.update(Path(annotation).read_bytes())
    settings = {"format": FORMAT_VERSION, "media_root": media_root, "payload": payload, "rows": rows}
    settings["geometry"] = dict(geometry) if payload != "bytes" else None
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def shard_name(number: int, run: str) -> str:
    return f"shard-{number:05d}-{run}"


def sample_key(position: int) -> str:
    """A WebDataset key (no dots): the row's position in its annotation file."""
    return f"{position:09d}"


# ---------------------------------------------------------------------------------------- writing
def _member(tar: tarfile.TarFile, name: str, data: bytes) -> tuple[int, int]:
    """Add ``data`` as ``name`` with fixed metadata (same input, same bytes); its ``(offset, size)``."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    offset = tar.offset + len(info.tobuf(tar.format, tar.encoding, tar.errors))  # after its header
    tar.addfile(info, io.BytesIO(data))
    return offset, info.size


def write_shard(path: Path, samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write a tar of ``samples`` (``{key, where, row, payload: (ext, bytes) | None, clip}``)
    atomically; the index entries: each row with its payload's member and byte range."""
    entries = []
    with atomic_path(path) as partial, tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tar:
        for sample in samples:
            meta = {k: sample[k] for k in ("key", "where", "row", "clip")}
            _member(tar, f"{sample['key']}.json", json.dumps(meta, sort_keys=True).encode())
            entry = dict(meta, member=None, offset=0, size=0)
            if sample["payload"] is not None:
                ext, data = sample["payload"]
                member = f"{sample['key']}.{ext}"
                entry["member"] = member
                entry["offset"], entry["size"] = _member(tar, member, data)
            entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------------- reading
def is_remote(location: str | os.PathLike) -> bool:
    text = str(location)
    return "://" in text and not text.startswith("file://")


def _join(location: str, name: str) -> str:
    return f"{location.rstrip('/')}/{name}"


def local_copy(location: str, name: str, cache: str | Path | None, size: int | None = None) -> Path:
    """A local path of ``location/name``: the file itself, or a cached download of a remote one.

    A cached file of the wrong size (an older copy) is fetched again; ``size`` is the index's.
    """
    if not is_remote(location):
        return Path(str(location).removeprefix("file://")) / name
    root = Path(cache) if cache is not None else DEFAULT_CACHE
    target = root / hashlib.sha256(location.encode()).hexdigest()[:16] / name
    if target.is_file() and (size is None or target.stat().st_size == size):
        return target
    import fsspec

    target.parent.mkdir(parents=True, exist_ok=True)
    url = _join(location, name)
    try:
        with atomic_path(target) as partial, fsspec.open(url, "rb") as remote, open(partial, "wb") as out:
            while chunk := remote.read(1 << 22):
                out.write(chunk)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ShardError(
            f"cannot read {url}: {type(error).__name__}: {reason}; check the address and the network, "
            "install the protocol's fsspec package (s3fs, gcsfs ...), or copy the folder and give its local path"
        ) from None
    return target


def read_index(location: str, cache: str | Path | None = None) -> dict[str, Any]:
    """The folder's checked index: complete (every shard there at its size) and of one prepare run."""
    path = local_copy(location, INDEX_FILE, cache)
    if not path.is_file():
        finished = sorted(Path(path.parent).glob("shard-*.json")) if path.parent.is_dir() else []
        what = f"{len(finished)} finished shards but no {INDEX_FILE}" if finished else f"no {INDEX_FILE}"
        raise ShardError(
            f"data.shards: {location} holds {what}: it is not a complete prepared folder; "
            "rerun tempo-kit prepare with the same arguments to finish it"
        )
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ShardError(f"data.shards: {path} is not a readable index ({error}); rerun tempo-kit prepare") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT_VERSION:
        raise ShardError(
            f"data.shards: {path} is not a tempo-kit shard index of format {FORMAT_VERSION}; rerun tempo-kit prepare"
        )
    if not is_remote(location):
        _check_local_shards(Path(path.parent), index)
    return index


def _check_local_shards(folder: Path, index: Mapping[str, Any]) -> None:
    run = index["run"]
    for shard in index["shards"]:
        tar = folder / f"{shard['name']}.tar"
        if not tar.is_file() or tar.stat().st_size != shard["bytes"]:
            others = sorted({p.stem.rsplit("-", 1)[-1] for p in folder.glob("shard-*.tar")} - {run})
            why = f"; the folder holds shards of another prepare run ({', '.join(others)})" if others else ""
            state = "missing" if not tar.is_file() else f"{tar.stat().st_size} bytes, not {shard['bytes']}"
            raise ShardError(
                f"data.shards: {tar.name} of {folder} is {state}{why}: the folder is incomplete or mixes "
                "prepare runs; rerun tempo-kit prepare into an empty folder"
            )


def check_geometry(index: Mapping[str, Any], geometry: Mapping[str, Any], location: str) -> None:
    """A ``frames`` payload was sampled with one geometry: the recipe must ask for the same."""
    if index["payload"] != "frames":
        return
    for key in GEOMETRY_KEYS:
        if index["geometry"].get(key) != geometry.get(key):
            raise ConfigError(
                f"data.shards: {location} holds frames prepared with {key}={index['geometry'].get(key)!r} but "
                f"the recipe has data.{key}={geometry.get(key)!r}; set data.{key}={index['geometry'].get(key)!r} "
                "or prepare the shards again with this recipe"
            )


def shard_entries(shards: Any) -> list[dict[str, Any]]:
    """``data.shards`` normalised to ``[{path, weight}]`` (a folder, a URL, or such mappings)."""
    if shards is None:
        return []
    if isinstance(shards, (str, os.PathLike, Mapping)):
        shards = [shards]
    entries = []
    for entry in shards:
        entry = {"path": entry} if isinstance(entry, (str, os.PathLike)) else entry
        if not isinstance(entry, Mapping) or "path" not in entry or set(entry) - {"path", "weight"}:
            raise ConfigError(
                f"data.shards: an entry is a prepared folder (path or URL) or {{path, weight}}; got {entry!r}"
            )
        entries.append({"path": str(entry["path"]), "weight": entry.get("weight")})
    return entries
