"""The model-folder verifier: what was saved is what is loaded, or loading stops with the file named.

``save_pretrained`` ends by writing ``manifest.json``: every file of the folder with its size and
SHA-256. Loading checks each listed file is present with that size (always) and that checksum
(by default; ``verify=False`` skips hashing, e.g. for a 12 GB folder on a trusted disk). A
missing component file, a truncated shard or flipped bytes are found before any weight is
built, instead of a component silently keeping its random initialisation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tempo_kit.atomic import write_json
from tempo_kit.errors import CheckpointError

#: File listing every file of a saved model folder with its size and checksum.
MANIFEST_NAME = "manifest.json"
#: Checksum algorithm written into and read from the manifest.
ALGORITHM = "sha256"
#: Bytes read per hashing call.
CHUNK_BYTES = 8 * 1024 * 1024


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.new(ALGORITHM)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | Path) -> Path:
    """List every file under ``folder`` (except the manifest) with its size and checksum."""
    folder = Path(folder)
    files = {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, ALGORITHM: file_digest(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }
    return write_json(folder / MANIFEST_NAME, {"algorithm": ALGORITHM, "files": files})


def verify_folder(folder: str | Path, *, checksums: bool = True) -> bool:
    """Check ``folder`` against its manifest; ``False`` when it has none (a folder saved before
    manifests existed), else ``True``. Raises :class:`CheckpointError` naming the first bad file."""
    folder = Path(folder)
    if not (folder / MANIFEST_NAME).is_file():
        return False
    reason = manifest_damage(folder, checksums=checksums)
    if reason is not None:
        fix = "copy the folder again from where it was saved, or save/convert the model again"
        raise CheckpointError(f"{reason}; {fix}")
    return True


def manifest_damage(folder: str | Path, *, checksums: bool = True) -> str | None:
    """Why ``folder`` differs from its ``manifest.json`` (``None`` when it matches or has none):
    the first missing, resized or changed file. Also the check of FSDP's sharded checkpoint
    folders, whose shards of the same size could come from another run."""
    import json

    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text())["files"]
        entries = [(name, int(entry["size"]), str(entry[ALGORITHM])) for name, entry in files.items()]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        return f"{manifest} is damaged ({type(error).__name__}: {error})"
    for name, saved_size, saved_digest in entries:
        path = folder / name
        if not path.is_file():
            return f"{folder} is incomplete: {name} is missing"
        size = path.stat().st_size
        if size != saved_size:
            return f"{path} has {size} bytes but was saved with {saved_size} (truncated or replaced)"
        if checksums and file_digest(path) != saved_digest:
            return f"{path} does not match the checksum it was saved with (damaged or from another save)"
    return None
