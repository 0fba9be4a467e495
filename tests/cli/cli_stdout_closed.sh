#!/usr/bin/env bash
# cli_stdout_closed.sh VRAMFIT MODEL: with stdout closed (`>&-`) a command that prints fails with
# exit code 1 and says why, instead of exiting 0 with nothing written.
set -u
err=$("$1" info "$2" 2>&1 >&-)
rc=$?
echo "$err"
[ "$rc" -eq 1 ] || { echo "FAIL: exit code $rc, expected 1"; exit 1; }
[[ "$err" == *"vramfit info: error: writing to stdout failed: Bad file descriptor"* ]] || { echo "FAIL: no reason"; exit 1; }
