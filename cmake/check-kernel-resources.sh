#!/usr/bin/env bash
# Fails the build of a CUDA object when one of its kernels spills registers or has a stack frame
# over MAX_STACK bytes, for every architecture it is compiled for (ptxas's --resource-usage
# report; no GPU needed). A per-thread stack is reserved for every thread the GPU can hold, so
# 1 KiB per thread is hundreds of MB of VRAM, and spills mean local-memory traffic in kernels that
# should be bandwidth-bound.
#
#   compile mode (the CUDA compiler launcher, see lib/cuda/CMakeLists.txt):
#     check-kernel-resources.sh MAX_STACK compiler-command...
#   It runs the command (which has --resource-usage), keeps ptxas's report as OBJECT.resources.txt
#   beside the object, prints only the violations, and removes the object when there is one.
#
#   check mode (a ctest test): check-kernel-resources.sh --check MAX_STACK "ARCHS" OBJECT...
#   Re-checks the objects' saved reports, and that each lists every architecture in ARCHS
#   (e.g. "75 80 90"), so a build that skipped the check cannot pass.
set -uo pipefail

# Reads ptxas output on stdin; prints "sm_XX stack spill_stores spill_loads function" per function
# and exits 1 when one breaks the limits (its line then starts with "VIOLATION").
parse() {
  awk -v max="$1" '
    /Compiling entry function/ { match($0, /for .sm_[0-9]+[a-z]*/); arch = substr($0, RSTART + 5, RLENGTH - 5) }
    /Function properties for/ { fn = $0; sub(/.*Function properties for /, "", fn) }
    /bytes stack frame/ {
      bad = ($1 + 0 > max) || ($5 + 0 > 0) || ($9 + 0 > 0)
      printf "%s%s stack=%d spill_stores=%d spill_loads=%d %s\n", bad ? "VIOLATION " : "", arch, $1, $5, $9, fn
      if (bad) failed = 1
    }
    END { exit failed }'
}

if [[ "${1:-}" == "--check" ]]; then
  max=$2 archs=$3
  shift 3
  status=0
  [[ $# -gt 0 ]] || { echo "no resource reports given (was the CUDA code built?)"; exit 1; }
  objects=()
  for arg in "$@"; do IFS=';' read -ra split <<< "$arg"; objects+=("${split[@]}"); done  # a CMake list is one argument
  for object in "${objects[@]}"; do
    report="$object.resources.txt"
    [[ -f "$report" ]] || { echo "missing: $report"; status=1; continue; }
    if ! parse "$max" < "$report" > /tmp/vramfit-resources.$$; then
      grep '^VIOLATION' /tmp/vramfit-resources.$$; status=1; continue
    fi
    for arch in $archs; do
      grep -q "Compiling entry function .* for 'sm_${arch}'" "$report" ||
        { echo "$report: no kernel compiled for sm_${arch}"; status=1; }
    done
    echo "$report: $(grep -c 'stack=' /tmp/vramfit-resources.$$) kernels (all architectures) within ${max} bytes of stack, no spills"
  done
  rm -f /tmp/vramfit-resources.$$
  exit $status
fi

max=$1
shift
object=""
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  [[ "${args[i]}" == "-o" ]] && object="${args[i + 1]:-}"
done
output=$("$@" 2>&1)
status=$?
# Everything but ptxas's report is the compiler's to show.
grep -v -e '^ptxas info' -e '^    [0-9]* bytes stack frame' <<< "$output" | grep -v '^$' >&2
[[ $status -eq 0 ]] || exit $status
[[ -n "$object" ]] || exit 0
grep -e '^ptxas info' -e 'bytes stack frame' <<< "$output" > "$object.resources.txt"
if ! violations=$(parse "$max" < "$object.resources.txt"); then
  echo "error: CUDA kernels in $object spill registers or use more than $max bytes of stack:" >&2
  grep '^VIOLATION' <<< "$violations" >&2
  rm -f "$object"
  exit 1
fi
