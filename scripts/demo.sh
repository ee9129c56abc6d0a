#!/usr/bin/env bash
# The CPU demo: set up .venv, build tiny Qwen3-VL / Qwen3 checkpoints and synthetic needle videos,
# train every part of Tempo on them with recipes/demo.yaml, then print the validation accuracy of
# the generated option letter (4 options: chance is 25 %). Everything lands under outputs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate

start=$(date +%s)
[ -d outputs/tiny/llm ] || tempo-kit make-tiny outputs/tiny
[ -f outputs/synthetic/val.jsonl ] || tempo-kit make-synthetic outputs/synthetic \
    --train 64 --val 32 --duration 12 --categories colour --question-types mc open --seed 0
prepared=$(date +%s)
tempo-kit fit --recipe recipes/demo.yaml "$@"
end=$(date +%s)
echo "demo: inputs $((prepared - start)) s, training + validation $((end - prepared)) s" \
     "(run folder outputs/demo: recipe.yaml, metrics.jsonl, tensorboard/, final/)"
