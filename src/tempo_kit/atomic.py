"""Atomic writes: a file or folder appears whole under its final name, or not at all.

Every write of a checkpoint, exported model, conversion, summary or converted annotation file
goes through here (and every append to a log file, through :func:`append_line`): the data is written beside the target under a hidden temporary name, flushed
to disk, then renamed over the target (``os.replace`` is atomic within one file system). A crash,
kill -9 or full disk midway leaves the previous version intact and at most a ``.*.partial-*``
leftover, never a half-written file under the real name.

Failures of the disk itself (full, read-only, name too long, a file where a folder should be)
become one-line :class:`~tempo_kit.errors.OutputError` messages naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from tempo_kit.errors import OutputError

#: The longest file name (one path component, in bytes) common file systems accept.
MAX_NAME_BYTES = 255

#: errno → what would fix it, for write failures the user can act on.
DISK_FIXES: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space or write somewhere else",
    errno.EDQUOT: "the disk quota is exhausted: free space or write somewhere else",
    errno.EFBIG: "the file is larger than this file system or process allows: write somewhere else",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EACCES: "permission denied: write somewhere you may write",
    errno.EPERM: "permission denied: write somewhere you may write",
    errno.ENAMETOOLONG: f"a file name is over {MAX_NAME_BYTES} bytes: choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "the path is a folder, not a file: name a file",
}


#: How libraries written in Rust (safetensors, tokenizers) report an OS error inside their own type.
_RUST_OS_ERROR = re.compile(r"(?:I/O error: )?([^:]*?) \(os error (\d+)\)")


def disk_error(error: BaseException, path: str | Path | None = None, action: str = "write") -> OutputError | None:
    """The one-line :class:`OutputError` for an OS failure the user can fix, else ``None``.

    Takes an ``OSError`` or a library error that carries one in its message (safetensors).
    """
    if isinstance(error, OSError):
        code, reason, where = error.errno, error.strerror or str(error), error.filename
    elif match := _RUST_OS_ERROR.search(str(error)):
        code, reason, where = int(match.group(2)), match.group(1).strip(), None
    else:
        return None
    fix = DISK_FIXES.get(code or -1)
    if fix is None:
        return None
    where = path if path is not None else where
    return OutputError(f"cannot {action} {where}: {reason}; {fix}")


@contextlib.contextmanager
def translated_disk_errors(path: str | Path) -> Iterator[None]:
    """Re-raise a fixable OS write failure under ``path`` as a one-line :class:`OutputError`."""
    try:
        yield
    except Exception as error:
        translated = disk_error(error, path)
        if translated is None:
            raise
        raise translated from error


#: ``check_output_path(kind=...)``: what the output is.
OUTPUT_KINDS = ("file", "folder")


def check_output_path(path: str | Path, *, what: str = "output", kind: str | None = None) -> Path:
    """Refuse an output path that cannot be written before any work starts; every verb's outputs
    go through here, so each is refused the same way.

    Checks: every existing ancestor is a folder, the nearest existing one is writable, no name is
    over :data:`MAX_NAME_BYTES` bytes and, with ``kind`` (``"file"`` / ``"folder"``), the path is
    not already the other kind. Returns the path.
    """
    path = Path(path).expanduser()
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, but a folder is written there; choose another path")
    if kind == "file" and path.is_dir():
        raise OutputError(f"{what} {path} is a folder, but a file is written there; name a file")
    for part in path.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise OutputError(
                f"{what} {path}: the name {part[:40]!r}... is {len(os.fsencode(part))} bytes, over the "
                f"{MAX_NAME_BYTES} a file system accepts; choose a shorter name"
            )
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise OutputError(f"{what} {path}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {ancestor} is not writable; choose a folder you may write")
    return path


def remove_partials(folder: str | Path, name: str = "*", recursive: bool = True) -> None:
    """Delete what interrupted atomic writes of ``name`` left in ``folder`` (``.NAME.partial-*``,
    ``.NAME.old-*``, and ``..NAME.partial-*``: a folder written atomically into a partial one, as
    ``convert`` saves a model into its output's partial); only while holding the folder's run lock,
    so no live write is touched."""
    for pattern in (f".{name}.partial-*", f"..{name}.partial-*", f".{name}.old-*"):
        found = Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern)
        for path in found:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for sync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``
    (:func:`atomic_path` syncs and renames it)."""
    with atomic_path(path) as partial, open(partial, mode, encoding=None if "b" in mode else encoding) as handle:
        yield handle


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` for a library that writes by name (torch.save,
    safetensors); on success the file is synced and renamed to ``path``."""
    target = Path(path)
    with translated_disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_name(target)
        try:
            yield partial
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_file(path) as handle:
        handle.write(text)
    return Path(path)


def append_line(path: str | Path, line: str) -> None:
    """Append one line to a log file (JSONL) as a single ``O_APPEND`` write.

    A log grows instead of being replaced, so it cannot be renamed into place; one ``write`` of
    the whole line on an append-mode descriptor is the append counterpart: writers in several
    processes (DataLoader workers, ranks) never interleave inside a line, and a crash leaves at
    most the last line missing, never another line cut.
    """
    data = (line if line.endswith("\n") else line + "\n").encode()
    with translated_disk_errors(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def write_json(path: str | Path, data: Mapping[str, Any] | list, **dump_kwargs: Any) -> Path:
    """Write ``data`` as indented JSON (newline-terminated) to ``path`` atomically."""
    dump_kwargs.setdefault("indent", 2)
    return write_text(path, json.dumps(data, **dump_kwargs) + "\n")


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it is renamed to ``path``.

    ``replace`` allows an existing ``path``: it is moved aside, the new folder renamed in, then the
    old one removed, so at every moment one complete folder exists. Without it an existing
    ``path`` is refused.
    """
    target = Path(path)
    if target.exists() and not replace:
        raise OutputError(f"{target} already exists; choose another folder or remove it first")
    with translated_disk_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_name(target)
        partial.mkdir()
        try:
            yield partial
            for file in partial.rglob("*"):
                if file.is_file():
                    with open(file, "rb") as handle:
                        os.fsync(handle.fileno())
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(target, old)
            os.replace(partial, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
