#!/usr/bin/env bash
# Checks, draws and trains the parallel-block GPT of parallel-gpt.model on the
# Brown corpus (character-level), then samples from it. SMALL=1: a CI-sized run.
set -euo pipefail
cd "$(dirname "$0")/../.."
gptc() { node bin/gptc.js "$@"; }
spec=examples/new-architecture/parallel-gpt.model
out=${OUT:-runs/parallel-gpt}
if [ "${SMALL:-}" = 1 ]; then size=(--set d=32 --set layers=2 --set heads=2 --set ctx=32); steps=20
else size=(); steps=600; fi

gptc check "$spec" "${size[@]}"
gptc graph "$spec" "${size[@]}" -o "$out.mmd"
gptc train "$spec" "${size[@]}" --tokenizer char --steps "$steps" --batch 16 --lr 3e-3 \
  --out "$out" --samples 0
gptc generate "$out" --prompt "The jury" --max-new-tokens 80 --temperature 0.8
