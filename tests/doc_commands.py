"""Commands quoted in the docs, read from the page itself, so the tests run what the reader copies."""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def doc_command(page: str, prefix: str) -> list[str]:
    """The argv of the first line in a fenced block of ``docs/<page>`` starting with ``prefix``."""
    text = (ROOT / "docs" / page).read_text().replace("\\\n", " ")
    fence: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence in ("bash", "sh", "") and line.strip().startswith(prefix):
            return shlex.split(line.split("  #")[0])
    raise AssertionError(f"docs/{page} has no command starting with {prefix!r}")
