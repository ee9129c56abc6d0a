#!/usr/bin/env bash
# The test command: set up if needed, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
source .venv/bin/activate
python -m pytest tests -q -p no:cacheprovider "$@"
