#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed's two programs, built in release mode: the blocking sleep (≈5 s, tasks one after the
# other) and the loop's sleep (≈3 s, tasks interleaved).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target seed_blocking_sleep seed_async_sleep
for prog in seed_blocking_sleep seed_async_sleep; do
  echo
  echo "===== $prog ====="
  "build/release/examples/$prog"
done
