#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Synchronization benchmark: our Queue, Lock and to_thread vs Python's asyncio, uvloop and
# Boost.Asio, same machine, same run, one Markdown table of ratios (also written to
# build/bench-sync.md).
#
#   bench/run_sync.sh [--quick]
#
# --quick divides every count by 100 (a smoke test; the numbers mean little).
# BUILD_DIR (default build/bench) is where our sync_bench is built, by the bench preset.
# Missing Debian packages (python3-uvloop, libboost-dev) are installed with apt-get.
# Raw output of each peer is kept in build/bench-sync/<peer>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-sync
TABLE=build/bench-sync.md
# Debian's interpreter on purpose: python3-uvloop is installed for it, not for a pyenv python3
# that may come first on PATH.
PYTHON=/usr/bin/python3

QUICK=()
for arg in "$@"; do
  case $arg in
    --quick) QUICK=(--quick) ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "run_sync.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SCRIPT=run_sync.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_packages python3-uvloop libboost-dev
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log

ASIO_OK=1 OURS_OK=1
build_cxx_peer bench/peers/sync_asio.cpp "$PEER_DIR/sync_asio" -pthread || { ASIO_OK=0; FAILED+=(asio-build); }
build_our_bench sync_bench || { OURS_OK=0; FAILED+=(ours-build); }

# One at a time: on a small machine, peers running side by side would slow each other.
run_peer asyncio "$PYTHON" bench/peers/sync_asyncio.py "${QUICK[@]}"
run_peer uvloop "$PYTHON" bench/peers/sync_asyncio.py --uvloop "${QUICK[@]}"
if ((ASIO_OK)); then run_peer asio "$PEER_DIR/sync_asio" "${QUICK[@]}"; fi
if ((OURS_OK)); then run_peer ours "$BUILD_DIR/bench/sync_bench" "${QUICK[@]}"; fi

# The table: ratios > 1 mean ours is better (ours/peer for rates, peer/ours for times).
"$PYTHON" - "$LOG_DIR" "${QUICK[@]}" <<'PY' | tee "$TABLE"
import datetime, os, platform, re, sys

logs, quick = sys.argv[1], "--quick" in sys.argv[2:]
PEERS = [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("asio", "Boost.Asio")]
# (workload, metric, unit, higher is better, target ratio vs asyncio)
METRICS = [
    ("queue", "ns_per_item", "ns/item", False, 30),
    ("lock", "ns_per_acquire", "ns/acquire", False, 30),
    ("to_thread", "calls_per_s", "calls/s", True, 5),
]

def read(name):
    results, skips = {}, {}
    path = os.path.join(logs, name + ".log")
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r"^RESULT (\S+) (\S+) (\S+)$", line.strip())
            if m:
                results[(m[1], m[2])] = float(m[3])
            m = re.match(r"^SKIP (\S+) (.*)$", line.strip())
            if m:
                skips[m[1]] = m[2]
    return results, skips

def fmt(v):
    if v is None:
        return "n/a"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= max(scale, 1e5 if scale == 1e3 else scale):
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"

def ratio(ours, peer, higher):
    if not ours or not peer:
        return "n/a"
    return f"{(ours / peer if higher else peer / ours):.1f}x"

try:
    sys.path.insert(0, "bench")
    from core_table import machine_line  # the core benchmark's description of the machine
    machine = machine_line()
except Exception:
    machine = f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"

ours, _ = read("ours")
peers = {name: read(name) for name, _ in PEERS}
print("# Synchronization benchmark: asyncio for C++ vs asyncio, uvloop, Boost.Asio")
print()
print(f"{datetime.date.today().isoformat()}; {machine}.")
if quick:
    print()
    print("**--quick run: counts divided by 100, numbers are only a smoke test.**")
print()
print("Ratios: > 1 means ours is better (ours/peer for rates, peer/ours for times).")
print()
head = ["workload", "metric", "ours"] + [t for _, t in PEERS] + [f"vs {t}" for _, t in PEERS] + ["target vs asyncio"]
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
notes = []
for workload, metric, unit, higher, target in METRICS:
    key = (workload, metric)
    o = ours.get(key)
    values = [peers[name][0].get(key) for name, _ in PEERS]
    row = [workload, unit, fmt(o)] + [fmt(v) for v in values] + [ratio(o, v, higher) for v in values]
    a = values[0]
    met = o and a and ((o / a) if higher else (a / o)) >= target
    row.append(f"≥ {target}x: " + ("met" if met else "**not met**"))
    print("| " + " | ".join(row) + " |")
    for (name, title) in PEERS:
        if workload in peers[name][1]:
            notes.append(f"{title} {workload}: {peers[name][1][workload]}")
if notes:
    print()
    for n in notes:
        print(f"- n/a: {n}")
PY
log "table written to $TABLE"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
