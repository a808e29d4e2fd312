#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tests/package/consumer against an installed asyncio with find_package, and runs it.
#   run_find_package.sh PREFIX WORKDIR CXX [EXTRA_CMAKE_ARGS...]
set -euo pipefail
prefix=$1 work=$2 cxx=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
set -x
cmake -S "$here/consumer" -B "$work" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" "$@"
cmake --build "$work"
"$work/consumer"
