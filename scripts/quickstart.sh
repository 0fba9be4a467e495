#!/usr/bin/env bash
# README command 1: install what is missing, build in Release, and run a small model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"

model="${VRAMFIT_TEST_DATA:-../shared}/models/stories260K.gguf"
if [[ ! -f "$model" ]]; then
  # No test data beside the checkout: make a small random model so the pipeline still runs
  # end to end (its text is gibberish; the real model is in ../shared).
  model=build/synth-small.gguf
  ./build/bin/vramfit synth -o "$model"
fi
./build/bin/vramfit info "$model"
./build/bin/vramfit run -m "$model" -p "Once upon a time, there was a little" -n 48 --temp 0
