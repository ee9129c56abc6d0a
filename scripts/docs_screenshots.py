"""Build the docs and photograph pages in headless Chromium: ``python scripts/docs_screenshots.py``.

Writes ``docs/assets/screenshots/<name>.png`` for the pages in :data:`PAGES` (the home page and the
gallery's newest entries), so a change of layout shows up in review. The tests call
:func:`screenshot` on a freshly built site to check the pages render in a real browser.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tempo_kit.browser import CHROMIUM_FLAGS, find_chromium

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "assets" / "screenshots"

#: name → page of the built site
PAGES = {
    "home": "index.html",
    "fit": "commands/fit/index.html",
    "example-compressor-and-ata": "examples/compressor_and_ata/index.html",
    "example-plugin-package": "examples/plugin_package/index.html",
}

def build_site(site: Path) -> Path:
    """``mkdocs build --strict`` into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    return site


def screenshot(page: Path | str, out: Path, width: int = 1280, height: int = 900) -> Path:
    """Render ``page`` (a file of the built site, optionally ``#anchor``) to the PNG ``out``.

    Headless Chromium paints nothing below an anchor's scroll position, so photograph pages from the top.
    """
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    path, _, anchor = str(page).partition("#")
    url = Path(path).resolve().as_uri() + (f"#{anchor}" if anchor else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile each time
        subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "--virtual-time-budget=3000", f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(Path(tmp) / "site")
        for name, page in PAGES.items():
            print(screenshot(site / page, OUT / f"{name}.png"))


if __name__ == "__main__":
    main()
