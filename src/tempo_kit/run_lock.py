"""One command per output folder: a second ``fit``/``eval``/``convert`` into a folder in use is refused.

The lock is an advisory ``flock`` on ``<folder>/.tempo-kit.lock``: the operating system releases
it when its process ends, however it ends (kill -9 included), so a crashed run never leaves a
stale lock behind. Only the launching process takes it: the worker processes a multi-GPU run
starts share their launcher's folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tempo_kit.errors import OutputError

#: The lock file inside a locked output folder.
LOCK_NAME = ".tempo-kit.lock"


def is_launch_process() -> bool:
    """Whether this is the process a user started (not a rank a launcher started beside it)."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        if os.environ.get(variable, "0") != "0":
            return False
    return True


@contextlib.contextmanager
def run_lock(folder: str | Path, verb: str, lock_name: str = LOCK_NAME) -> Iterator[None]:
    """Hold ``folder``'s lock for the duration of ``tempo-kit verb``; refuse when another holds it.

    ``lock_name`` names the lock file (``convert`` locks its output's name inside the parent).
    """
    if not is_launch_process():
        yield
        return
    import fcntl

    from tempo_kit.atomic import translated_disk_errors

    folder = Path(folder)
    path = folder / lock_name
    with translated_disk_errors(path):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise OutputError(
                f"{folder} is in use by {holder}; wait for it to finish, or choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`tempo-kit {verb}` (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
