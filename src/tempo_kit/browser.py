"""Headless Chromium for looking at the kit's web pages as a reader does.

The docs screenshots (``scripts/docs_screenshots.py``) and the demo's browser test both start
Debian's ``chromium``; they share its flags and its lookup here so the two cannot drift apart.
Each caller adds what is its own: a window size, a fresh ``--user-data-dir``.
"""

from __future__ import annotations

import shutil

#: A browser that does nothing but render: no network of its own, no first-run pages, no GPU.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)

#: The names Chromium's binary has on PATH (Debian's package, then older distributions').
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    """The Chromium binary on PATH, or None when it is not installed (``apt-get install chromium``)."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
