#!/usr/bin/env bash
# Create .venv and install tempo-kit with its dev tools, the web demo's Gradio and the server's FastAPI. torch is pinned first so the CPU build
# on this machine is used; on a GPU machine install your CUDA build of torch before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -d .venv ] || "$PYTHON" -m venv .venv
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
python -m pip install --quiet -e ".[dev,trackers,demo,serve,families,shards,torchcodec]"
# The [eval] extra without lmms-eval's own dependency list: that list pulls torchvision and a newer
# torch, which would replace the torch build above. Its CLI runs on these (the tests use it offline).
python -m pip install --quiet --no-deps "lmms-eval>=0.7,<0.8"
python -m pip install --quiet "filelock<4" "pyarrow>=14" datasets evaluate sacrebleu pytablewriter loguru \
    tenacity python-dotenv httpx aiohttp jinja2 pyyaml sympy
python -c "import tempo_kit, torch, transformers, lightning; print('tempo-kit', tempo_kit.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| lightning', lightning.__version__)"
