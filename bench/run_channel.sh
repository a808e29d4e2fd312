#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Channel benchmark: our Channel<T> between loops on threads vs Go channels and Boost.Asio's
# experimental::concurrent_channel, same machine, same run, one Markdown table of ratios (also
# written to build/bench-channel.md).
#
#   bench/run_channel.sh [--quick]
#
# Workloads (bench/channel/channel_{ours.cpp,go.go,asio.cpp}, the same in each):
#   pingpong   two parties on two threads, two channels of capacity 1: ns per round trip. Go's
#              goroutines are locked to OS threads for it (runtime.LockOSThread), since two loops
#              are two threads; Go's default, where both goroutines may share one thread and no
#              thread is crossed, is reported too (pingpong_one_thread).
#   tput_1x1   1 producer -> 1 consumer, one channel of capacity 1024: items/s.
#   tput_4x4   4 producers -> 4 consumers on one channel: items/s.
#              Both in two shapes: every party on a thread of its own (ours: a loop per thread;
#              Go: goroutines locked to OS threads; Asio: an io_context per thread), and the shape
#              Go's scheduler picks by default, where a woken goroutine mostly runs next on its
#              waker's thread, so items change hands without crossing threads (ours: every
#              party a task of one loop).
#   floor      tput_1x1 and tput_4x4 by plain threads that never park (ours only): each retries
#              try_send / try_recv and yields between tries. What the threads and the ring cost
#              alone, without waiting or waking: the floor a thread-per-party shape can reach here.
# ROUNDS (default 3) runs of each program, interleaved; the table shows each figure's median and
# the min-max spread. --quick: counts / 100, one round (a smoke test).
# Go comes from Debian's golang-go; Boost 1.81's headers from Debian's libboost1.81-dev, unpacked
# into build/bench-peers/boost181 (apt-get download; not installed, so the system's Boost stays).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-channel
TABLE=build/bench-channel.md
PYTHON=/usr/bin/python3

QUICK=()
for arg in "$@"; do
  case $arg in
    --quick) QUICK=(--quick) ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_channel.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
ROUNDS=${ROUNDS:-3}
((${#QUICK[@]})) && ROUNDS=1

SCRIPT=run_channel.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_packages golang-go
mkdir -p "$LOG_DIR" "$PEER_DIR"
rm -f "$LOG_DIR"/*.log

BOOST181=$PEER_DIR/boost181
if [[ ! -d $BOOST181/usr/include/boost/asio/experimental ]]; then
  log "unpacking Debian's libboost1.81-dev headers into $BOOST181"
  (cd "$PEER_DIR" && rm -f libboost1.81-dev_*.deb && apt-get download libboost1.81-dev >&2)
  dpkg -x "$PEER_DIR"/libboost1.81-dev_*.deb "$BOOST181"
fi

OK_ours=1 OK_go=1 OK_asio=1
build_our_bench channel_ours || { OK_ours=0; FAILED+=(ours-build); }
if [[ ! -x $PEER_DIR/channel_go || bench/channel/channel_go.go -nt $PEER_DIR/channel_go ]]; then
  log "building $PEER_DIR/channel_go"
  (cd bench/channel && GOCACHE=${GOCACHE:-$PWD/../../$PEER_DIR/go-cache} go build -o "../../$PEER_DIR/channel_go" channel_go.go) ||
    { rm -f "$PEER_DIR/channel_go"; OK_go=0; FAILED+=(go-build); }
fi
build_cxx_peer bench/channel/channel_asio.cpp "$PEER_DIR/channel_asio" -isystem "$BOOST181/usr/include" -pthread ||
  { OK_asio=0; FAILED+=(asio-build); }

# Interleaved rounds: a burst of load from elsewhere on the machine hits every peer alike.
for ((r = 1; r <= ROUNDS; r++)); do
  ((OK_ours)) && run_peer "ours.$r" "$BUILD_DIR/bench/channel_ours" "${QUICK[@]}"
  ((OK_go)) && run_peer "go.$r" "$PEER_DIR/channel_go" "${QUICK[@]}"
  ((OK_asio)) && run_peer "asio.$r" "$PEER_DIR/channel_asio" "${QUICK[@]}"
done

"$PYTHON" - "$LOG_DIR" "$ROUNDS" <<'PY' | tee "$TABLE"
import datetime, glob, os, platform, re, statistics, sys

logs, rounds = sys.argv[1], int(sys.argv[2])
PEERS = [("ours", "ours"), ("go", "Go"), ("asio", "Boost.Asio")]
# (label, unit, higher is better, {peer: the RESULT key that peer reports for it})
METRICS = [
    ("ping-pong, 2 threads", "ns/round trip", False,
     {"ours": "pingpong_ns", "go": "pingpong_ns", "asio": "pingpong_ns"}),
    ("ping-pong, Go on one thread", "ns/round trip", False, {"go": "pingpong_one_thread_ns"}),
    ("throughput 1 -> 1, a thread each", "items/s", True,
     {"ours": "tput_1x1", "go": "tput_1x1_threads", "asio": "tput_1x1"}),
    ("throughput 4 -> 4, a thread each", "items/s", True,
     {"ours": "tput_4x4", "go": "tput_4x4_threads", "asio": "tput_4x4"}),
    ("throughput 1 -> 1, ours on one loop, Go's scheduler", "items/s", True,
     {"ours": "tput_1x1_one_loop", "go": "tput_1x1"}),
    ("throughput 4 -> 4, ours on one loop, Go's scheduler", "items/s", True,
     {"ours": "tput_4x4_one_loop", "go": "tput_4x4"}),
    ("floor 1 -> 1: threads retrying try_send/try_recv, never parking", "items/s", True,
     {"ours": "floor_1x1"}),
    ("floor 4 -> 4: the same, eight threads", "items/s", True, {"ours": "floor_4x4"}),
]

def values(peer, key):
    out = []
    for path in sorted(glob.glob(os.path.join(logs, peer + ".*.log"))):
        for line in open(path):
            m = re.match(r"RESULT (\S+) ([0-9.]+)", line)
            if m and m.group(1) == key:
                out.append(float(m.group(2)))
    return out

def fmt(v, unit):
    if unit == "items/s":
        return f"{v / 1e6:.2f} M"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"

print(f"Channel benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
      f"{os.cpu_count()} CPUs, {rounds} round(s); median (min-max)\n")
print("| workload | unit | " + " | ".join(label for _, label in PEERS) + " | ours vs Go | ours vs Asio |")
print("|---|---|" + "---|" * len(PEERS) + "---|---|")
for label, unit, higher, keys in METRICS:
    cells, med = [], {}
    for peer, _ in PEERS:
        v = values(peer, keys[peer]) if peer in keys else []
        if not v:
            cells.append("–")
            continue
        med[peer] = statistics.median(v)
        cells.append(f"{fmt(med[peer], unit)} ({fmt(min(v), unit)}–{fmt(max(v), unit)})")
    ratios = []
    for peer in ("go", "asio"):
        if "ours" in med and peer in med and med["ours"] and med[peer]:
            # > 1: ours is better (faster rate, or shorter time)
            r = med["ours"] / med[peer] if higher else med[peer] / med["ours"]
            ratios.append(f"{r:.2f}×")
        else:
            ratios.append("–")
    print(f"| {label} | {unit} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
print("\nRatios > 1: ours is better (a higher rate, or a shorter round trip).")
PY
if ((${#FAILED[@]})); then log "failed: ${FAILED[*]}"; exit 1; fi
