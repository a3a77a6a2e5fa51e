#!/usr/bin/env bash
# Fine-tunes GPT-2 on a folder of text: starts from Hugging Face weights
# (a folder with config.json and model.safetensors, e.g. a download of
# huggingface.co/gpt2), trains on examples/fine-tune/text (or TEXT=folder), samples.
#   bash examples/fine-tune/run.sh /path/to/gpt2
# Without a folder (or with SMALL=1, as CI runs it) a small stand-in model in
# the same format is made first by `gptc train`, whose run folders are
# Hugging Face folders too (config.json + model.safetensors, the same keys).
set -euo pipefail
cd "$(dirname "$0")/../.."
gptc() { node bin/gptc.js "$@"; }
work=${OUT:-runs/fine-tune}
text=${TEXT:-examples/fine-tune/text}
hf=${1:-}
if [ -z "$hf" ]; then
  hf=$work/pretrained
  echo "no Hugging Face folder given: making a small stand-in GPT-2 in $hf"
  rm -rf "$hf"
  gptc train specs/gpt2-small.model --set d=32 --set layers=2 --set heads=2 --set ctx=64 \
    --steps 10 --batch 4 --seq 32 --out "$hf" --samples 0
fi
steps=${STEPS:-$([ "${SMALL:-}" = 1 ] && echo 10 || echo 200)}
rm -rf "$work/tuned"
gptc train specs/gpt2-small.model --init "$hf" --data "$text" --steps "$steps" \
  --batch 4 --seq 32 --lr 1e-4 --out "$work/tuned" --samples 0
gptc generate "$work/tuned" --prompt "The court" --max-new-tokens 40 --temperature 0.8 --top-k 40
