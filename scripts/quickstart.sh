#!/usr/bin/env bash
# README command 1: install what is missing, build in Release, and run a small model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
model="${VRAMFIT_TEST_DATA:-../shared}/models/stories260K.gguf"
./build/bin/vramfit info "$model"
