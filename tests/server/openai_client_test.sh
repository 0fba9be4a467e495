#!/usr/bin/env bash
# Starts `vramfit serve` on a free loopback port (stories260K split across a simulated device and
# the CPU, 4 slots planned in one budget) and runs openai_client.mjs against it with the official
# OpenAI JavaScript client, installed with npm into WORK once (cached).
# usage: openai_client_test.sh VRAMFIT_CLI MODEL WORK SOURCE_DIR
# Exit 77 (ctest: skipped) without node/npm or the npm package, except under CI=true: then it fails.
set -euo pipefail
cli=$1 model=$2 work=$3 source_dir=$4

skip() {
  if [[ "${CI:-}" == true ]]; then echo "FAIL (CI=true): $1" >&2; exit 1; fi
  echo "skipped: $1" >&2
  exit 77
}
command -v node > /dev/null && command -v npm > /dev/null || skip "node and npm are needed (apt-get install nodejs npm)"
[[ -f $model ]] || skip "test model not found: $model"
mkdir -p "$work"
if [[ ! -f $work/node_modules/openai/package.json ]]; then
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error openai@4) || skip "npm install openai@4 failed"
fi
cp "$source_dir/openai_client.mjs" "$work/"  # beside node_modules, where `import 'openai'` looks

budget=1400000      # bytes; the plan for 4 slots puts 3 of stories260K's 5 layers on the device
max_body=65536       # --max-body 64KiB
key="test-key-$$"
log=$work/serve.log
"$cli" serve -m "$model" --port 0 --api-key "$key" -np 4 --queue 16 -c 256 -b 32 -t 1 -ngl 3 \
  --device sim:4MiB --vram-budget "$budget" --max-body 64KiB 2> "$log" &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$log")
  [[ -n $port ]] && break
  kill -0 "$server" 2> /dev/null || { cat "$log" >&2; echo "vramfit serve exited" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { cat "$log" >&2; echo "vramfit serve did not start listening" >&2; exit 1; }
head -2 "$log"

VRAMFIT_URL="http://127.0.0.1:$port/v1" VRAMFIT_KEY="$key" VRAMFIT_MODEL=stories260K \
  VRAMFIT_BUDGET="$budget" VRAMFIT_MAX_BODY="$max_body" node "$work/openai_client.mjs"

kill -TERM "$server"
wait "$server"  # SIGTERM stops it cleanly: exit status 0
trap - EXIT
grep -c "generated tokens" "$log" | sed 's/^/requests logged by the server: /'
tail -1 "$log"
