#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite in three stages, each a CMake workflow preset (configure, build, CTest):
#   asan           g++ 12, -Werror, AddressSanitizer+UBSan: memory errors, and the coroutine
#                  temporaries g++ 12 destroys twice (docs/networking.md, "A g++ 12 note"), which
#                  an optimised build runs without a sign; the library and the tests (the examples
#                  run in the next stage);
#   clang-release  clang 14 -O3, -Werror: the second compiler, optimised; the examples; the docs
#                  (the Doxygen reference, the compiled code blocks); and the package as users get
#                  it (tests/package, label "package": install, pkg-config, the .deb,
#                  FetchContent, a shared build without TLS), which needs no sanitizer flags here;
#   tsan           g++ -O2 ThreadSanitizer over the suites that cross threads (the library built
#                  optimised by g++ once more).
# The `release` (g++ -O3) and `clang-asan` presets stay for local use: a fourth full build would
# take CI past its 15-minute budget. What keeps the three inside it: the library compiled as a
# few unity batches, one process per GoogleTest suite where tests allow it (tests/CMakeLists.txt),
# line tables only in the sanitizer builds (CMakePresets.json says what else).
# `scripts/test.sh release` (or any preset names) runs only those stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

stages=("$@")
((${#stages[@]})) || stages=(asan clang-release tsan)
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
for preset in "${stages[@]}"; do
  echo "===== $preset ====="
  start=$(date +%s)
  cmake --workflow --preset "$preset"
  echo "===== $preset passed in $(( $(date +%s) - start )) s ====="
done
