#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + ASan + UBSan, clang): builds tests/fuzz into build-fuzz,
# replays the regression inputs (tests/fuzz/corpus, and the GGUF ones tests/gguf/hostile_gguf.py
# writes), then fuzzes every harness for SECONDS seconds each (default 20) from seeds it derives
# from ../shared (never copied into the repo). Any crash, leak, sanitizer report, uncaught
# exception or timeout fails the script; its input is saved as build-fuzz/crashes/HARNESS-* (with
# the fix, add it to tests/fuzz/corpus/HARNESS/, or a GGUF file to hostile_gguf.py).
# Prints executions and coverage per harness and writes them to build-fuzz/fuzz-report.txt.
#   scripts/fuzz.sh [SECONDS] [HARNESS...]      e.g. scripts/fuzz.sh 600 fuzz_gguf
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(fuzz_gguf fuzz_planner fuzz_tokenizer fuzz_chat fuzz_size)
export VRAMFIT_TEST_DATA=${VRAMFIT_TEST_DATA:-$PWD/../shared}
if [[ ! -d $VRAMFIT_TEST_DATA/vocab ]]; then
  echo "fuzz.sh: test data not found at $VRAMFIT_TEST_DATA (set VRAMFIT_TEST_DATA)" >&2
  exit 1
fi

bash scripts/install-deps.sh fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVRAMFIT_FUZZ=ON \
  -DVRAMFIT_CUDA=OFF -DVRAMFIT_BUILD_TESTS=OFF -DVRAMFIT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${harnesses[@]}"

# Per harness: the longest input worth trying, and its dictionary.
declare -A max_len=([fuzz_gguf]=131072 [fuzz_planner]=131072 [fuzz_tokenizer]=4096 [fuzz_chat]=32768 [fuzz_size]=64)
declare -A dict=([fuzz_gguf]=gguf.dict [fuzz_planner]=gguf.dict [fuzz_chat]=jinja.dict)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p build-fuzz/crashes
report=build-fuzz/fuzz-report.txt
: >"$report"
failed=0
for h in "${harnesses[@]}"; do
  bin=build-fuzz/fuzz/$h
  regressions=build-fuzz/regressions/$h
  rm -rf "$regressions"
  mkdir -p "$regressions"
  if compgen -G "tests/fuzz/corpus/$h/*" >/dev/null; then cp tests/fuzz/corpus/"$h"/* "$regressions"/; fi
  if [[ $h == fuzz_gguf ]]; then
    python3 tests/gguf/hostile_gguf.py vocab-30000-cjk "$regressions/vocab-30000-cjk.gguf"
  fi
  work=build-fuzz/corpus/$h
  seeds=build-fuzz/seeds/$h
  rm -rf "$seeds"
  VRAMFIT_FUZZ_SEEDS=$seeds "$bin" 2>/dev/null
  mkdir -p "$work"
  # Every crash found so far, run once each: none may fail again.
  if compgen -G "$regressions/*" >/dev/null; then
    if ! "$bin" -timeout=30 "$regressions"/* >"build-fuzz/$h.replay.log" 2>&1; then
      echo "fuzz.sh: $h fails on a regression input (build-fuzz/$h.replay.log)" >&2
      failed=1
      continue
    fi
  fi
  options=(-max_total_time="$seconds" -max_len="${max_len[$h]}" -timeout=10 -rss_limit_mb=2048
           -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$h-")
  [[ -n ${dict[$h]:-} ]] && options+=(-dict="tests/fuzz/${dict[$h]}")
  if ! "$bin" "${options[@]}" "$work" "$seeds" "$regressions" >"build-fuzz/$h.log" 2>&1; then
    echo "fuzz.sh: $h found a failure (build-fuzz/$h.log, input in build-fuzz/crashes/):" >&2
    grep -E "^(==[0-9]+==ERROR|SUMMARY|fuzz invariant)" "build-fuzz/$h.log" | head -5 >&2 || true
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: //p' "build-fuzz/$h.log" | tail -1)
  cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" "build-fuzz/$h.log" | tail -1)
  printf '%-16s %10s executions in %ss  %s\n' "$h" "${runs:-?}" "$seconds" "${cov:-}" | tee -a "$report"
done
exit $failed
