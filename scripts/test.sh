#!/usr/bin/env bash
# The test command: set up if needed, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # a no-op when .venv is up to date (a stamp keyed on pyproject.toml and setup.sh)
source .venv/bin/activate
python -m pytest tests -q -p no:cacheprovider "$@"
