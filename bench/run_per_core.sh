#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Per-core echo server benchmark: examples/echo_per_core with 1 loop and with 2 loops (and the
# acceptor-handoff design with 2 loops), same machine, same run, ratios to 1 loop (also written
# to build/bench-per-core.md).
#
#   bench/run_per_core.sh [--quick]
#
# Each configuration gets a fresh server process; bench/server/loadgen.c drives 100 connections
# of 100-byte echoes (one request in flight per connection) for DURATION seconds after WARMUP.
#  - efficiency: one load generator; requests per second of server CPU time (utime + stime of
#    the server process over the measured window, /proc/PID/stat). 2 loops should cost no more
#    per request than 1 (target: >= 0.95x): nothing is shared between loops but the port.
#  - total: two load generators (50 connections each), everything on the machine's CPUs with
#    no pinning: total requests/s, 2 loops vs 1 (target: above 1).
# On a 2-CPU machine the load generator competes with the server for the same CPUs; on a bigger
# machine, set SERVER_CPUS and LOADGEN_CPUS (taskset lists, e.g. SERVER_CPUS=0-3
# LOADGEN_CPUS=4-7 LOOPS="1 2 4") to give each its own cores: the server's loops are pinned
# inside SERVER_CPUS (--pin) and total requests/s should then grow with the loop count.
# Environment: DURATION (default 5; --quick 1), WARMUP (1), ROUNDS (3; --quick 1), LOOPS ("1 2").
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-per-core
TABLE=build/bench-per-core.md
PYTHON=/usr/bin/python3

QUICK=0
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run_per_core.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if ((QUICK)); then DURATION=${DURATION:-1}; ROUNDS=${ROUNDS:-1}; else DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; fi
WARMUP=${WARMUP:-1}
LOOPS=${LOOPS:-"1 2"}
SERVER_CPUS=${SERVER_CPUS:-}
LOADGEN_CPUS=${LOADGEN_CPUS:-}

SCRIPT=run_per_core.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

mkdir -p "$LOG_DIR" "$PEER_DIR"
rm -f "$LOG_DIR"/*.log
build_our_bench echo_per_core
if [[ ! -x $PEER_DIR/loadgen || bench/server/loadgen.c -nt $PEER_DIR/loadgen ]]; then
  log "building $PEER_DIR/loadgen"
  cc -std=gnu11 -O3 -Wall -o "$PEER_DIR/loadgen" bench/server/loadgen.c
fi
SERVER_BIN=$BUILD_DIR/examples/echo_per_core

# The command prefix that runs a program on a CPU list (nothing when no list is given); not a
# shell function, so that $! of a background job is the program's own pid.
SERVER_ON=() LOADGEN_ON=()
[[ -n $SERVER_CPUS ]] && SERVER_ON=(taskset -c "$SERVER_CPUS")
[[ -n $LOADGEN_CPUS ]] && LOADGEN_ON=(taskset -c "$LOADGEN_CPUS")

SERVER_PID=""
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

# measure NAME GENERATORS SERVER_ARGS...: one server, GENERATORS load generators sharing 100
# connections; appends "NAME rps=... server_cpu_s=... seconds=..." to $LOG_DIR/results.log.
measure() {
  local name=$1 gens=$2; shift 2
  local out=$LOG_DIR/$name.server.log
  local pin=()
  [[ -n $SERVER_CPUS ]] && pin=(--pin)
  "${SERVER_ON[@]}" "$SERVER_BIN" "$@" "${pin[@]}" 127.0.0.1 0 >"$out" 2>&1 &
  SERVER_PID=$!
  local port=""
  for _ in $(seq 1 100); do
    # The background job's shell may not have created $out yet: not an error, look again.
    port=$(sed -n 's|^Serving on 127.0.0.1:\([0-9]*\).*|\1|p' "$out" 2>/dev/null || true)
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { log "$name: server did not start"; cat "$out" >&2; stop_server; return 1; }
  local conns=$((100 / gens)) g pids=()
  for ((g = 1; g <= gens; g++)); do
    "${LOADGEN_ON[@]}" "$PEER_DIR/loadgen" -c "$conns" -s 100 -d "$DURATION" -w "$WARMUP" -p "$SERVER_PID" \
      127.0.0.1 "$port" >"$LOG_DIR/$name.gen$g.log" 2>&1 &
    pids+=($!)
  done
  local ok=1
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  stop_server
  ((ok)) || { log "$name: a load generator failed"; FAILED+=("$name"); return 0; }
  # Total requests of all generators; the server CPU of the first (the windows coincide).
  "$PYTHON" - "$name" "$LOG_DIR" "$gens" >>"$LOG_DIR/results.log" <<'PY'
import re, sys
name, logs, gens = sys.argv[1], sys.argv[2], int(sys.argv[3])
rps = cpu = secs = 0.0
for g in range(1, gens + 1):
    line = [l for l in open(f"{logs}/{name}.gen{g}.log") if l.startswith("RESULT")][-1]
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    rps += float(kv["rps"])
    if g == 1:
        cpu, secs = float(kv["server_cpu_s"]), float(kv["seconds"])
print(f"{name} rps={rps:.0f} server_cpu_s={cpu:.3f} seconds={secs:.3f}")
PY
}

for ((r = 1; r <= ROUNDS; r++)); do
  for l in $LOOPS; do
    measure "eff.reuse_port.$l.r$r" 1 --loops "$l"
    measure "total.reuse_port.$l.r$r" 2 --loops "$l"
  done
  measure "eff.handoff.2.r$r" 1 --loops 2 --handoff
  measure "total.handoff.2.r$r" 2 --loops 2 --handoff
done

"$PYTHON" - "$LOG_DIR/results.log" "$ROUNDS" "$LOOPS" "$DURATION" <<'PY' | tee "$TABLE"
import datetime, os, platform, re, statistics, sys
path, rounds, loops, duration = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
rows = {}
for line in open(path):
    name, *kv = line.split()
    kind, design, n, _ = name.split(".")
    d = dict(x.split("=") for x in kv)
    rows.setdefault((kind, design, n), []).append(d)

def med(kind, design, n, f):
    v = [f(d) for d in rows.get((kind, design, n), [])]
    return (statistics.median(v), min(v), max(v)) if v else None

eff = lambda d: float(d["rps"]) * float(d["seconds"]) / float(d["server_cpu_s"])
rps = lambda d: float(d["rps"])
cpu = lambda d: float(d["server_cpu_s"]) / float(d["seconds"])
print(f"Per-core echo server, {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs, "
      f"{rounds} round(s) of {duration} s; median (min-max)\n")
print("| design | loops | req/s, 1 generator | server CPUs busy | req per server CPU-s | vs 1 loop | req/s, 2 generators | vs 1 loop |")
print("|---|---|---|---|---|---|---|---|")
base_eff = med("eff", "reuse_port", loops[0], eff)
base_tot = med("total", "reuse_port", loops[0], rps)
configs = [("reuse_port", n) for n in loops] + [("handoff", "2")]
for design, n in configs:
    e, r1, c, t = med("eff", design, n, eff), med("eff", design, n, rps), med("eff", design, n, cpu), med("total", design, n, rps)
    if not e or not t:
        continue
    f = lambda m: f"{m[0]:,.0f} ({m[1]:,.0f}–{m[2]:,.0f})"
    print(f"| {design} | {n} | {f(r1)} | {c[0]:.2f} | {f(e)} | {e[0] / base_eff[0]:.2f}× | {f(t)} | {t[0] / base_tot[0]:.2f}× |")
PY
if ((${#FAILED[@]})); then log "failed: ${FAILED[*]}"; exit 1; fi
