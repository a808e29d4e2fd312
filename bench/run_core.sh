#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Core benchmark: our asyncio vs Python's asyncio, uvloop and Boost.Asio (C++20 coroutines),
# same machine, same run, one Markdown table of ratios (also written to build/bench-core.md).
#
#   bench/run_core.sh [--quick]
#
# --quick divides every count by 100 (a smoke test; the numbers mean little).
# BUILD_DIR (default build/bench) is where our core_bench is built, by the bench preset.
# Missing Debian packages (python3-uvloop, libboost-dev) are installed with apt-get.
# Raw output of each peer is kept in build/bench-core/<peer>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-core
TABLE=build/bench-core.md
# Debian's interpreter on purpose: python3-uvloop is installed for it, not for a pyenv python3
# that may come first on PATH.
PYTHON=/usr/bin/python3

QUICK=()
for arg in "$@"; do
  case $arg in
    --quick) QUICK=(--quick) ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run_core.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SCRIPT=run_core.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_packages python3-uvloop libboost-dev
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

ASIO_OK=1 OURS_OK=1
build_cxx_peer bench/peers/core_asio.cpp "$PEER_DIR/core_asio" || { ASIO_OK=0; FAILED+=(asio-build); }
build_our_bench core_bench || { OURS_OK=0; FAILED+=(ours-build); }
build_our_bench timers_floor || FAILED+=(floor-build)

# One at a time: on a small machine, peers running side by side would slow each other.
run_peer asyncio "$PYTHON" bench/peers/core_asyncio.py "${QUICK[@]}"
run_peer uvloop "$PYTHON" bench/peers/core_asyncio.py --uvloop "${QUICK[@]}"
if ((ASIO_OK)); then run_peer asio "$PEER_DIR/core_asio" "${QUICK[@]}"; fi
# A stale core_bench from before a failed build would flatter or slander the current code.
if ((OURS_OK)); then run_peer ours "$BUILD_DIR/bench/core_bench" "${QUICK[@]}"; fi

"$PYTHON" bench/core_table.py --logs "$LOG_DIR" ${QUICK:+--quick} | tee "$TABLE"

# The timers row's floor on this machine: set-up of a million tasks with no runtime at all
# (bench/timers_floor.cpp), for a bare 64-byte task and for our task's size; the last timer
# cannot fire before set-up + 1 s.
if [[ -x $BUILD_DIR/bench/timers_floor ]]; then
  "$BUILD_DIR/bench/timers_floor" 64 "$(awk '$2 == "timers" && $3 == "bytes_per_task" {printf "%d", $4}' "$LOG_DIR/ours.log" 2>/dev/null || echo 400)" \
    > "$LOG_DIR/timers_floor.log" || FAILED+=(floor)
  awk '$1 == "RESULT" {sub("setup_s_", "", $3); printf "timers floor (no runtime, %s per task): set-up %.3f s, so at best %.3f s\n", $3, $4, $4 + 1}' \
    "$LOG_DIR/timers_floor.log" | tee -a "$TABLE"
fi
log "table written to $TABLE"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
