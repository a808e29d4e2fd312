#!/usr/bin/env bash
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

log() { echo "run_core.sh: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs only what is missing, so a second run never touches apt.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# Rebuilt when its sources change; not part of the CMake build, so the library never needs Boost.
build_asio_peer() {
  local src=bench/peers/core_asio.cpp bin=$PEER_DIR/core_asio
  if [[ -x $bin && $bin -nt $src && $bin -nt bench/bench_common.hpp ]]; then return 0; fi
  log "building $bin"
  mkdir -p "$PEER_DIR"
  # A failed build must not leave the previous binary to be benchmarked as if it were current.
  g++ -std=c++20 -O2 -DNDEBUG -o "$bin" "$src" || { rm -f "$bin"; return 1; }
}

# Configures with the bench preset the first time; afterwards an incremental build, so the
# numbers are never those of a stale binary.
build_core_bench() {
  if [[ ! -f $BUILD_DIR/build.ninja && ! -f $BUILD_DIR/Makefile ]]; then
    log "configuring $BUILD_DIR (cmake --preset bench)"
    cmake --preset bench -B "$BUILD_DIR" >&2 || return 1
  fi
  log "building core_bench in $BUILD_DIR"
  cmake --build "$BUILD_DIR" --target core_bench >&2
}

FAILED=()

# run_peer NAME COMMAND...: keeps the output in $LOG_DIR/NAME.log. A peer that fails is
# reported and left out of the table instead of hiding the others' numbers.
run_peer() {
  local name=$1; shift
  log "running $name: $*"
  if ! "$@" >"$LOG_DIR/$name.log" 2>&1; then
    log "$name FAILED (see $LOG_DIR/$name.log):"
    tail -n 5 "$LOG_DIR/$name.log" >&2
    FAILED+=("$name")
  fi
}

ensure_packages python3-uvloop libboost-dev
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

ASIO_OK=1 OURS_OK=1
build_asio_peer || { ASIO_OK=0; FAILED+=(asio-build); }
build_core_bench || { OURS_OK=0; FAILED+=(ours-build); }

# One at a time: on a small machine, peers running side by side would slow each other.
run_peer asyncio "$PYTHON" bench/peers/core_asyncio.py "${QUICK[@]}"
run_peer uvloop "$PYTHON" bench/peers/core_asyncio.py --uvloop "${QUICK[@]}"
if ((ASIO_OK)); then run_peer asio "$PEER_DIR/core_asio" "${QUICK[@]}"; fi
# A stale core_bench from before a failed build would flatter or slander the current code.
if ((OURS_OK)); then run_peer ours "$BUILD_DIR/bench/core_bench" "${QUICK[@]}"; fi

"$PYTHON" bench/core_table.py --logs "$LOG_DIR" ${QUICK:+--quick} | tee "$TABLE"
log "table written to $TABLE"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
