#!/usr/bin/env bash
# Installs the build tree to a temporary prefix, then builds and runs tests/capi/consumer against it
# with find_package (shared and static) and with pkg-config.
# Usage: consumer_test.sh BUILD_DIR SOURCE_DIR C_COMPILER [MODEL]
set -euo pipefail
build=$1 source=$2 cc=$3 model=${4:-}
[[ -n $model && ! -f $model ]] && model=""  # no test data: install and link only
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" --component vramfit > /dev/null

echo "== find_package(vramfit CONFIG)"
cmake -S "$source/tests/capi/consumer" -B "$work/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$work/cmake" > /dev/null
"$work/cmake/consumer" $model
"$work/cmake/consumer_static" $model
"$work/cmake/consumer_cpp" $model

echo "== pkg-config vramfit"
pc_dir=$(dirname "$(find "$prefix" -name vramfit.pc)")
export PKG_CONFIG_PATH=$pc_dir
libdir=$(pkg-config --variable=libdir vramfit)
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -pedantic -Werror "$source/tests/capi/consumer/consumer.c" -o "$work/pc_consumer" \
  $(pkg-config --cflags --libs vramfit) -Wl,-rpath,"$libdir"
"$work/pc_consumer" $model
