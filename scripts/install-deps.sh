#!/usr/bin/env bash
# Installs the Debian packages vramfit needs to build and test; a no-op when they are present.
set -euo pipefail
# python3-*: the Python binding and its tests. libcpp-httplib-dev, nlohmann-json3-dev: `vramfit serve`
# only (the library never uses them).
packages=(cmake ninja-build g++ gcc pkg-config libxsimd-dev libfmt-dev doctest-dev
          python3 python3-pytest python3-venv python3-setuptools python3-wheel
          libcpp-httplib-dev nlohmann-json3-dev)
# node + npm: serve's test drives it with the official OpenAI JavaScript client. Debian's packages
# only when there is no node yet (a NodeSource nodejs bundles npm and conflicts with Debian's).
command -v node > /dev/null || packages+=(nodejs)
command -v npm > /dev/null || packages+=(npm)
# `install-deps.sh fuzz` adds what scripts/fuzz.sh builds with: clang and its libFuzzer.
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
