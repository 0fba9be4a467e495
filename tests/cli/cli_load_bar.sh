#!/usr/bin/env bash
# cli_load_bar.sh VRAMFIT MODEL: on a terminal (script(1) gives one) `vramfit run` draws a load
# bar for a big file (>= 256 MiB); with stderr not a terminal it draws none.
set -u
cli=$1 model=$2
command -v script >/dev/null || { echo "script(1) missing (util-linux)"; exit 1; }
args="run -m $model -p hello -n 2 -t 1 -c 64 --device sim:1GiB -ngl 3 --seed 1"
on_tty=$(script -qec "$cli $args" /dev/null)
rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: exit code $rc on a terminal"; echo "$on_tty"; exit 1; }
echo "$on_tty" | grep -q 'loading \[#\{40\}\] 100%' || { echo "FAIL: no full load bar on a terminal"; echo "$on_tty"; exit 1; }
off_tty=$($cli $args 2>&1 >/dev/null)
if echo "$off_tty" | grep -q 'loading \['; then echo "FAIL: a load bar without a terminal"; echo "$off_tty"; exit 1; fi
echo "ok: load bar on a terminal only"
