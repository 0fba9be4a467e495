#!/bin/bash
# cli_chat_sigint.sh VRAMFIT MODEL WORKDIR
# Ctrl-C (SIGINT) while `vramfit chat` answers stops that answer, not the program: the next
# message is answered; SIGINT at the prompt then ends it with status 130. Waits on the output,
# not on fixed delays, so a slow machine only makes it slower.
set -u
vramfit=$1 model=$2 work=$3
mkdir -p "$work" && cd "$work" || exit 1
rm -f in.fifo out.txt err.txt && mkfifo in.fifo
# A long context and no token limit: an answer runs for many seconds unless interrupted.
"$vramfit" chat -m "$model" --temp 0 -c 8192 -t 1 < in.fifo > out.txt 2> err.txt &
pid=$!
exec 3> in.fifo

fail() {
  echo "FAIL: $*"; echo "--- stderr:"; cat err.txt
  kill -KILL "$pid" 2> /dev/null
  exit 1
}
# wait_for DESCRIPTION COMMAND...: polls COMMAND for up to 120 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1200); do
    "$@" && return 0
    kill -0 "$pid" 2> /dev/null || fail "vramfit chat ended while waiting for $what"
    sleep 0.1
  done
  fail "timed out waiting for $what"
}
# Conditions, evaluated at each poll.
has_footers() { [ "$(grep -c 'tok/s | context' err.txt)" -ge "$1" ]; }
stdout_grew_past() { [ "$(stat -c %s out.txt)" -gt "$1" ]; }

echo "Tell me a long story" >&3
wait_for "the first answer to stream" test -s out.txt
kill -INT "$pid"
wait_for "the first answer to stop" grep -q 'answer stopped (Ctrl-C)' err.txt
wait_for "the first stats line" has_footers 1

first_size=$(stat -c %s out.txt)
echo "And another one" >&3
wait_for "the second answer to stream" stdout_grew_past $((first_size + 1))
kill -INT "$pid"
wait_for "the second stats line" has_footers 2
grep -q 'prompt: [1-9][0-9]* reused' err.txt || fail "the second message reused nothing of the first turn"

# At the prompt: SIGINT ends the program (sent again if it arrived just before the read began).
for _ in $(seq 50); do
  kill -INT "$pid" 2> /dev/null || break
  sleep 0.2
done
exec 3>&-
wait "$pid"
status=$?
[ "$status" -eq 130 ] || fail "exit status $status after SIGINT at the prompt (expected 130)"
[ "$(grep -c 'answer stopped (Ctrl-C)' err.txt)" -eq 2 ] || fail "expected two stopped answers"
echo "PASS: two answers stopped by SIGINT, the program went on; SIGINT at the prompt ended it (130)"
cat err.txt
