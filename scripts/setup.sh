#!/usr/bin/env bash
# Create .venv and install tempo-kit with every extra (dev tools, trackers, the web demo's Gradio,
# evaluation, the server, other model families, remote shards, torchcodec). torch is installed
# first only when absent, and nothing after may replace it: on a GPU machine install your CUDA
# build of torch into .venv before running this.
#
# The install route is the README's: the extras never list a package that pulls torch, and
# lmms-eval (whose own requirements would upgrade torch and add torchvision) is installed last
# with --no-deps. A second run with the same pyproject.toml and this script skips the install
# (a stamp in .venv holds their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -d .venv ] || "$PYTHON" -m venv .venv
source .venv/bin/activate
STAMP=.venv/.tempo-kit-installed
wanted=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && python -c "import tempo_kit, lmms_eval" 2>/dev/null; then
    echo "setup: .venv is up to date (pyproject.toml and scripts/setup.sh unchanged); skipping the install"
    exit 0
fi
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
torch_before=$(python -c "import torch; print(torch.__version__)")
# pip's conflict warnings would only name lmms-eval's deliberately skipped requirements; the check
# below is the real one
python -m pip install --quiet --no-warn-conflicts -e ".[dev,trackers,demo,eval,serve,families,shards,torchcodec]"
python -m pip install --quiet --no-deps "lmms-eval>=0.7,<0.8"
python scripts/check_install.py "$torch_before"
python -c "import tempo_kit, torch, transformers, lightning; print('tempo-kit', tempo_kit.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
echo "$wanted" > "$STAMP"
