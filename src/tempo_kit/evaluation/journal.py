"""Append-only JSONL journals that survive a kill: the harness's results and the lmms-eval answers.

Each record is one line, flushed and fsynced before the next item starts, so a killed run loses
at most the item in flight; a last line cut short by the kill is ignored on reading (and cut off
before appending). A journal is written by one process at a time: :func:`open_journal` takes an
exclusive lock and refuses a second writer instead of letting two runs interleave their lines.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from tempo_kit.errors import ConfigError


def read_journal(path: str | Path, repair: bool = False) -> list[dict]:
    """The records of a journal, in order. A last line cut short by a crash is ignored
    (and, with ``repair``, cut off the file so appending continues on a clean line)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as handle:
            handle.truncate(len(complete))
    records = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"results file {path} line {number} is not valid JSON ({error}); "
                "remove that line or start a new results file"
            ) from error
    return records


def open_journal(path: str | Path) -> IO[str]:
    """Open ``path`` for appending, locked against a second writer (the lock ends with the process).

    Raises:
        ConfigError: another process is writing the same file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"{path} is being written by another run; wait for it to finish, or write to another output"
        ) from None
    # after the lock: a crashed writer's half line is cut off before anything is appended
    read_journal(path, repair=True)
    return handle


def append_record(handle: IO[str], record: Mapping[str, Any]) -> None:
    """One JSON line, on disk before this returns."""
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())
