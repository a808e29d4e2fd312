#!/usr/bin/env bash
# The whole test suite in three stages, each a CMake workflow preset (configure, build, CTest):
#   release     g++ 12 -O3, -Werror: the build users get;
#   clang-asan  clang 14, -Werror, AddressSanitizer+UBSan: the second compiler and the memory
#               checks in one build (the g++ `asan` and `clang-release` presets stay for local use;
#               running all four would take CI past its 15-minute budget);
#   tsan        g++ ThreadSanitizer over the suites that cross threads.
# `scripts/test.sh release` (or any preset names) runs only those stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

stages=("$@")
((${#stages[@]})) || stages=(release clang-asan tsan)
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
for preset in "${stages[@]}"; do
  echo "===== $preset ====="
  start=$(date +%s)
  cmake --workflow --preset "$preset"
  echo "===== $preset passed in $(( $(date +%s) - start )) s ====="
done
