#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Process benchmark: spawn and wait 2,000 /bin/true, 50 at a time, and 1 GiB through `cat` with
# pipes on both ends, for our asyncio, Python's asyncio and uvloop, and plain C (the floor), same
# machine, same run, one Markdown table of ratios (also written to build/bench-process.md).
#
#   bench/run_process.sh [--quick] [--rounds N]
#
# Every round runs every peer once per workload, one after the other, and the table takes each
# peer's best round (default 3 rounds), listing all of them below it to show the noise.
# --quick: 200 processes, 64 MiB, one round (a smoke test; the numbers mean little).
# BUILD_DIR (default build/bench) is where our process_bench is built, by the bench preset.
# python3-uvloop is installed with apt-get if missing. Raw output in build/bench-process/.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-process
TABLE=build/bench-process.md
PYTHON=/usr/bin/python3  # Debian's: python3-uvloop is installed for it

PROCS=2000
BYTES=$((1 << 30))
ROUNDS=3
QUICK=()
while (($#)); do
  case $1 in
    --quick) QUICK=(--quick) PROCS=200 BYTES=$((64 << 20)) ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run_process.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

SCRIPT=run_process.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_packages python3-uvloop
mkdir -p "$LOG_DIR" "$PEER_DIR"
rm -f "$LOG_DIR"/*.log

C_OK=1 OURS_OK=1
if [[ ! -x $PEER_DIR/process_c || bench/peers/process_c.c -nt $PEER_DIR/process_c ]]; then
  log "building $PEER_DIR/process_c"
  gcc -O2 -o "$PEER_DIR/process_c" bench/peers/process_c.c || { rm -f "$PEER_DIR/process_c"; C_OK=0; FAILED+=(c-build); }
fi
build_our_bench process_bench || { OURS_OK=0; FAILED+=(ours-build); }

# run_round_peer NAME COMMAND...: appends this round's output to NAME.log; a failure is reported
# and that round left out.
run_round_peer() {
  local name=$1
  shift
  log "round $round: $name $*"
  local out
  if out=$("$@" 2>&1); then
    echo "$out" >>"$LOG_DIR/$name.log"
  else
    log "$name FAILED: $(echo "$out" | tail -n 3)"
    FAILED+=("$name")
  fi
}

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  for workload in spawn pipe; do
    count=$PROCS
    [[ $workload == pipe ]] && count=$BYTES
    # One at a time: on a small machine, peers running side by side would slow each other.
    if ((C_OK)); then run_round_peer c "$PEER_DIR/process_c" "$workload" "$count"; fi
    # A stale process_bench from before a failed build would flatter or slander the current code.
    if ((OURS_OK)); then run_round_peer ours "$BUILD_DIR/bench/process_bench" "$workload" "$count"; fi
    # Python ignores SIGPIPE from start-up; with the default disposition our pipe writes keep it
    # away themselves (block, write, unblock), which this row shows the cost of.
    if ((OURS_OK)) && [[ $workload == pipe ]]; then
      run_round_peer ours_noSIGPIPE "$BUILD_DIR/bench/process_bench" pipe "$count" --sigpipe-ignored
    fi
    run_round_peer asyncio "$PYTHON" bench/peers/process_asyncio.py "$workload" "$count"
    run_round_peer uvloop "$PYTHON" bench/peers/process_asyncio.py --uvloop "$workload" "$count"
  done
done

"$PYTHON" bench/process_table.py --logs "$LOG_DIR" ${QUICK:+--quick} | tee "$TABLE"
log "table written to $TABLE"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
