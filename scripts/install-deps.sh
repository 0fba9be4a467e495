#!/usr/bin/env bash
# Installs the Debian packages vramfit needs to build and test; a no-op when they are present.
set -euo pipefail
# `install-deps.sh fuzz` adds what scripts/fuzz.sh builds with: clang and its libFuzzer.
packages=(cmake ninja-build g++ gcc pkg-config libxsimd-dev libfmt-dev doctest-dev)
[[ ${1:-} == fuzz ]] && packages+=(clang libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
