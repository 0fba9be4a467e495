#!/usr/bin/env bash
# cli_interrupt.sh VRAMFIT MODEL WORKDIR: Ctrl-C (SIGINT) during `vramfit run` stops generation
# after the current token, prints the timings with "stopped: interrupted", and exits with 130.
set -u
cli=$1 model=$2 work=$3
mkdir -p "$work"
out=$work/stdout err=$work/stderr
# Greedy stories260K never ends a story here: with 8192 positions it generates for seconds.
"$cli" run -m "$model" -p "Once upon a time" -n -1 -c 8192 --temp 0 -t 1 >"$out" 2>"$err" &
pid=$!
# Wait until text is streaming (past the 16 bytes of the prompt), then interrupt.
for _ in $(seq 1 200); do
  [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -gt 64 ] && break
  sleep 0.05
done
kill -INT "$pid"
wait "$pid"
rc=$?
fail() {
  echo "FAIL: $1 (exit code $rc)"
  echo "--- stderr:"; cat "$err"
  exit 1
}
[ "$rc" -eq 130 ] || fail "expected exit code 130"
grep -q "^generation: [0-9]* tokens, [0-9.]* tok/s (stopped: interrupted)$" "$err" || fail "no timings after Ctrl-C"
grep -q "^prompt: 5 tokens" "$err" || fail "no prompt timing"
echo "ok: interrupted after $(grep -o '^generation: [0-9]*' "$err")"
