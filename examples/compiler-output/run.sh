#!/usr/bin/env bash
# What the compiler makes of a model, step by step, for gpt2-tiny:
# the AST, the forward IR before and after optimization, the training IR
# (autodiff), the fused kernels, the memory plan, a diagram, and finally a
# check of the compiled model against PyTorch (the fixture in test/fixtures/tiny).
set -euo pipefail
cd "$(dirname "$0")/../.."
gptc() { node bin/gptc.js "$@"; }
out=${OUT:-build/compiler-output}
gptc compile specs/gpt2-tiny.model --batch 2 --seq 16 -o "$out"
ls -l "$out"
echo "--- the first lines of the optimized forward IR ($out/forward-opt.ir)"
head -n 12 "$out/forward-opt.ir"
echo "--- the kernels after fusion ($out/kernels.txt)"
head -n 8 "$out/kernels.txt"
gptc graph specs/gpt2-tiny.model --level blocks -o "$out/blocks.mmd"
gptc graph specs/gpt2-tiny.model --level kernels --format dot -o "$out/kernels.dot"
fixture=${FIXTURE:-test/fixtures/tiny}
if [ -d "$fixture" ]; then
  gptc verify "$fixture" --backend webasm
else
  echo "no fixture folder at $fixture (an installed package ships none): FIXTURE=folder to check one" >&2
  exit 1
fi
