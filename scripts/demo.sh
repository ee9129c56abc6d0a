#!/usr/bin/env bash
# The CPU demo: set up .venv, build tiny Qwen3-VL / Qwen3 checkpoints and synthetic needle videos,
# train Tempo's answer and relevance together on them with recipes/demo.yaml, then print the
# validation loss, the accuracy of the one-word answer (8 colours: chance 12.5 %) with all tokens
# and at a budget of half the tokens under ATA, the even split (uniform) and Uniform Subsampling,
# and the relevance AUROC, all on the held-out videos. The first epoch decodes the training videos
# and keeps their frames (data.cache_clips), so the other epochs only train. Everything lands under
# outputs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate

start=$(date +%s)
[ -d outputs/tiny/llm ] || tempo-kit make-tiny outputs/tiny
# 256 training videos of 16 s, read as one frame every 2 s (8 frames: 4 segments of 2). The shape
# is on screen for 4 s, in one segment or two: relevant_spans, the relevance objective's labels.
grep -qs '"duration": 16.0' outputs/synthetic/val.jsonl && [ -f outputs/synthetic/videos/train_00255.mp4 ] ||
    tempo-kit make-synthetic outputs/synthetic --train 256 --val 64 \
        --fps 2 --duration 16 --needle-duration 4 --categories colour --question-types open --seed 0
prepared=$(date +%s)
tempo-kit fit --recipe recipes/demo.yaml "$@"
end=$(date +%s)
echo "demo: val/open_accuracy is the answer with all 64 tokens; val/<allocator>_accuracy@32 at half" \
     "of them; val/auroc how well the relevance ranks the segments the shape is on"
echo "demo: inputs $((prepared - start)) s, training + validation $((end - prepared)) s" \
     "(run folder outputs/demo: recipe.yaml, metrics.jsonl, tensorboard/, final/)"
