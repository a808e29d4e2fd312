#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tests/package/consumer/main.cpp against an installed asyncio with pkg-config alone (no
# CMake), the way a Makefile would, and runs it.
#   run_pkg_config.sh PREFIX WORKDIR CXX
set -euo pipefail
prefix=$1 work=$2 cxx=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
pcdir=$(dirname "$(find "$prefix" -name asyncio.pc | head -n1)")
set -x
export PKG_CONFIG_PATH=$pcdir
pkg-config --modversion asyncio
"$cxx" -std=c++20 -o "$work/consumer" "$here/consumer/main.cpp" $(pkg-config --cflags --libs asyncio)
"$work/consumer"
