#!/usr/bin/env bash
# Create .venv and install tempo-kit with its dev tools. torch is pinned first so the CPU build
# on this machine is used; on a GPU machine install your CUDA build of torch before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -d .venv ] || "$PYTHON" -m venv .venv
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
python -m pip install --quiet -e ".[dev,trackers]"
python -c "import tempo_kit, torch, transformers, lightning; print('tempo-kit', tempo_kit.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
