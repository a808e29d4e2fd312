#!/usr/bin/env bash
# The whole test suite: g++ release, clang 14 release, AddressSanitizer+UBSan, ThreadSanitizer.
# Each stage configures, builds and runs CTest through the CMake workflow presets.
# `scripts/test.sh release` (or any preset names) runs only those stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

stages=("$@")
((${#stages[@]})) || stages=(release clang-release asan tsan)
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
for preset in "${stages[@]}"; do
  echo "===== $preset ====="
  start=$(date +%s)
  cmake --workflow --preset "$preset"
  echo "===== $preset passed in $(( $(date +%s) - start )) s ====="
done
