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
    import json

    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return False
    try:
        document = json.loads(manifest.read_text())
        files = document["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{manifest} is damaged ({error}); save or convert the model again") from None
    fix = "copy the folder again from where it was saved, or save/convert the model again"
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{folder} is incomplete: {name} is missing; {fix}")
        size = path.stat().st_size
        if size != entry["size"]:
            raise CheckpointError(
                f"{path} has {size} bytes but was saved with {entry['size']} (truncated or replaced); {fix}"
            )
        if checksums and file_digest(path) != entry[ALGORITHM]:
            raise CheckpointError(f"{path} does not match the checksum it was saved with (damaged); {fix}")
    return True
