#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exact user-space instructions per operation of the core workloads, for one or more builds of
# core_bench side by side: valgrind's cachegrind counts a full-size run and a --quick run (1/100
# of the operations) of each workload, and the difference divided by 99/100 of the operations
# cancels start-up and shutdown. Deterministic, so it shows changes of a few instructions that
# wall-clock timings on a shared machine cannot.
#
#   bench/count_instructions.sh [NAME=PATH/TO/core_bench ...]
#
# Default: this tree's build/bench/bench/core_bench (cmake --preset bench && cmake --build
# build/bench --target core_bench). To compare with another commit, build it alike elsewhere:
#   git archive BASE | tar -x -C /tmp/base && cmake -S /tmp/base -B /tmp/base/build -G Ninja \
#     -DCMAKE_BUILD_TYPE=Release -DASYNCIO_BUILD_BENCH=ON -DASYNCIO_BUILD_TESTS=OFF \
#     && cmake --build /tmp/base/build --target core_bench
#   bench/count_instructions.sh before=/tmp/base/build/bench/core_bench after=build/bench/bench/core_bench
# WORKLOADS (default "yield pingpong spawn") picks the workloads; timers is left out by default
# because its iteration count depends on timing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "count_instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
builds=("$@")
((${#builds[@]})) || builds=("ours=build/bench/bench/core_bench")
WORKLOADS=${WORKLOADS:-"yield pingpong spawn"}
# Operations in a full run (bench/bench_common.hpp): yields, round trips, tasks.
ops_of() {
  case $1 in
    yield) echo 1000000 ;;
    pingpong) echo 1000000 ;;
    spawn) echo 1000000 ;;
    timers) echo 1000000 ;;
  esac
}
count() {  # count BINARY WORKLOAD [--quick]: total instructions (Ir)
  local out
  out=$(mktemp)
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$1" --only "$2" ${3:-} \
    >/dev/null 2>"$out"
  sed -n 's/.*I *refs: *//p' "$out" | tr -d ', '
  rm -f "$out"
}
printf '%-10s' workload
for b in "${builds[@]}"; do printf ' %14s' "${b%%=*}"; done
printf '   (instructions per operation)\n'
for w in $WORKLOADS; do
  printf '%-10s' "$w"
  ops=$(ops_of "$w")
  for b in "${builds[@]}"; do
    bin=${b#*=}
    full=$(count "$bin" "$w")
    quick=$(count "$bin" "$w" --quick)
    awk -v f="$full" -v q="$quick" -v n="$ops" 'BEGIN { printf " %14.1f", (f - q) / (n * 0.99) }'
  done
  printf '\n'
done
