#!/usr/bin/env bash
# README command 2: build everything (CUDA too when nvcc exists, warnings as errors) and run the
# whole test suite, then the sanitizer build of the input-handling tests, the ThreadSanitizer
# build of the threads test, and a short run of every fuzzer (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVRAMFIT_WERROR=ON -DVRAMFIT_CUDA=AUTO
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

# ASan + UBSan: the corruption corpus and the C ABI error paths (no CUDA: the sanitizers
# are for our host code).
# Warnings are enforced by the main build above; GCC 12 reports false -Wuninitialized inside
# its own AVX-512 headers when ASan is on, so this build does not treat warnings as errors.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVRAMFIT_WERROR=OFF \
  -DVRAMFIT_CUDA=OFF -DVRAMFIT_SANITIZE=ON -DVRAMFIT_BUILD_EXAMPLES=OFF
cmake --build build-asan -j "$jobs"
ctest --test-dir build-asan --output-on-failure -j "$jobs" -L sanitize

# ThreadSanitizer: contexts on one shared model, planning and tokenizing on several threads.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVRAMFIT_WERROR=OFF \
  -DVRAMFIT_CUDA=OFF -DVRAMFIT_SANITIZE=thread -DVRAMFIT_BUILD_EXAMPLES=OFF
cmake --build build-tsan -j "$jobs" --target test_threads
ctest --test-dir build-tsan --output-on-failure -L threads

# libFuzzer (clang, ASan + UBSan): the regression inputs, then every harness for a short fixed time.
bash scripts/fuzz.sh "${VRAMFIT_FUZZ_SECONDS:-20}"
