"""Check an install left torch as it was and is ``pip check``-clean.

    python scripts/check_install.py TORCH_VERSION_BEFORE

Exits 1 naming the problem when torch's version changed (an extra pulled another torch) or
``pip check`` reports a broken requirement other than the ones skipped on purpose: lmms-eval is
installed with ``--no-deps`` (its requirements would replace torch and add torchvision), and
decord's only wheel carries a Python 3.6 tag that pip check calls unsupported although it loads.
"""

from __future__ import annotations

import subprocess
import sys

#: ``pip check`` lines that are expected: (line prefix, why).
EXPECTED = (
    ("lmms-eval ", "installed with --no-deps on purpose"),
    ("decord 0.6.0 is not supported on this platform", "its wheel is tagged cp36 but loads on any CPython"),
)


def main(argv: list[str]) -> int:
    import torch

    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if torch.__version__ != argv[0]:
        print(f"check_install: torch changed from {argv[0]} to {torch.__version__}: an install replaced it")
        return 1
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    broken = [line for line in done.stdout.splitlines() if line and not line.startswith(tuple(p for p, _ in EXPECTED))]
    if broken:
        print("check_install: pip check reports broken requirements:\n  " + "\n  ".join(broken))
        return 1
    print(f"check_install: torch {torch.__version__} unchanged; pip check clean (lmms-eval installed without its deps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
