#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Network server benchmark: our echo servers (protocols, streams) and HTTP example vs a
# plain C epoll server (the floor), libuv, Boost.Asio (C++20 coroutines), Python asyncio and
# uvloop (streams and protocols) and Node.js, same machine, same run, same load generator.
#
#   bench/run_server.sh [--quick]
#
# Each server runs pinned to CPU 1 (taskset -c 1), the load generator to CPU 0; a fresh server
# process per scenario. Echo scenarios (bench/server/loadgen.c, one request in flight per
# connection): 100 B, 1 KiB and 16 KiB over 100 connections, 1 KiB over 1 connection (latency).
# HTTP: examples/http_hello_server (and C epoll and Node peers) under `wrk -t1 -c100`.
# Reported per server: requests/s, requests per second of server CPU time (utime + stime from
# /proc/PID/stat over the measured window), p50/p99 latency, peak RSS (VmHWM), and the ratios of
# ours to each peer. Tables go to stdout and build/bench-server.md, raw results to
# build/bench-server-logs/, the bar chart to docs/img/server_bench.png (bench/server_chart.py).
#
# Environment: DURATION (seconds per scenario, default 5; --quick: 1), WARMUP (default 1),
# ROUNDS (default 1; the table shows each figure's median over the rounds), SERVERS (a
# space-separated subset of the names below), SCENARIOS (a subset of echo100 echo1k echo16k
# lat1k http), BUILD_DIR (default build/bench, the bench preset: our servers, configured here if missing).
# Missing Debian packages (libuv1-dev, wrk, libboost-dev, nodejs, python3-uvloop,
# python3-matplotlib) are installed with apt-get; peers are built into build/bench-peers.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-server-logs
TABLE=build/bench-server.md
CHART=docs/img/server_bench.png
PYTHON=/usr/bin/python3  # Debian's: python3-uvloop and matplotlib are installed for it
SRC=bench/server

QUICK=0
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run_server.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if ((QUICK)); then
  DURATION=${DURATION:-1}
  WARMUP=${WARMUP:-0.3}
else
  DURATION=${DURATION:-5}
  WARMUP=${WARMUP:-1}
fi
ROUNDS=${ROUNDS:-1}

SCRIPT=run_server.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh  # log, ensure_packages, FAILED

# build_peer OUT SRC "LIBS" COMPILER FLAGS...: rebuilt when its source changed; a failed build
# leaves no binary behind (a stale one would be benchmarked as if it were current).
build_peer() {
  local bin=$PEER_DIR/$1 src=$2 libs=$3; shift 3
  if [[ -x $bin && $bin -nt $src ]]; then return 0; fi
  log "building $bin"
  mkdir -p "$PEER_DIR"
  # shellcheck disable=SC2086
  "$@" -o "$bin" "$src" $libs || { rm -f "$bin"; return 1; }
}

# Ours: configured with the bench preset the first time, afterwards an incremental build.
build_ours() {
  if [[ ! -f $BUILD_DIR/build.ninja && ! -f $BUILD_DIR/Makefile ]]; then
    log "configuring $BUILD_DIR (cmake --preset bench)"
    cmake --preset bench -B "$BUILD_DIR" >&2 || return 1
  fi
  log "building echo_protocol echo_streams http_hello_server in $BUILD_DIR"
  cmake --build "$BUILD_DIR" --target echo_protocol echo_streams http_hello_server >&2
}
ensure_packages libuv1-dev liburing-dev wrk libboost-dev nodejs python3-uvloop python3-matplotlib
build_peer loadgen $SRC/loadgen.c "" cc -std=gnu11 -O3 -Wall || { log "cannot build the load generator"; exit 1; }
build_peer echo_c_epoll $SRC/echo_c_epoll.c "" cc -std=gnu11 -O3 -Wall || FAILED+=(c_epoll-build)
build_peer echo_c_uring $SRC/echo_c_uring.c -luring cc -std=gnu11 -O3 -Wall || FAILED+=(c_uring-build)
build_peer echo_libuv $SRC/echo_libuv.c -luv cc -std=gnu11 -O3 -Wall || FAILED+=(libuv-build)
build_peer echo_asio $SRC/echo_asio.cpp "" g++ -std=c++20 -O3 -DNDEBUG || FAILED+=(asio-build)
build_ours || FAILED+=(ours-build)
OURS=$BUILD_DIR/bench
ECHO_PY="$PYTHON $SRC/echo_asyncio.py"

# name|command (host and port are appended). The order is the tables' order.
ECHO_SERVERS=(
  "ours_protocol|$OURS/echo_protocol"
  "ours_streams|$OURS/echo_streams"
  "c_epoll|$PEER_DIR/echo_c_epoll"
  "c_uring|$PEER_DIR/echo_c_uring"
  "c_uring_multishot|$PEER_DIR/echo_c_uring --multishot"
  "libuv|$PEER_DIR/echo_libuv"
  "asio|$PEER_DIR/echo_asio"
  "asyncio_protocols|$ECHO_PY protocols"
  "asyncio_streams|$ECHO_PY streams"
  "uvloop_protocols|$ECHO_PY --uvloop protocols"
  "uvloop_streams|$ECHO_PY --uvloop streams"
  "node|node $SRC/echo_node.js"
)
HTTP_SERVERS=(
  "ours_http|$BUILD_DIR/examples/http_hello_server"
  "c_epoll_http|$PEER_DIR/echo_c_epoll --http"
  "node_http|node $SRC/echo_node.js --http"
)
# scenario|connections|message size
ECHO_SCENARIOS=("echo100|100|100" "echo1k|100|1024" "echo16k|100|16384" "lat1k|1|1024")
SCENARIOS=${SCENARIOS:-"echo100 echo1k echo16k lat1k http"}

wanted() {  # wanted NAME LIST
  [[ " $2 " == *" $1 "* ]]
}

mkdir -p "$LOG_DIR"
RESULTS=$LOG_DIR/results.txt
: >"$RESULTS"
# Below Linux's ephemeral range (32768-60999), so that no connection of an earlier scenario
# holds the port the next server binds.
PORT=$((10000 + RANDOM % 20000))
SERVER_PID=

# start_server NAME COMMAND...: pinned to CPU 1; waits for its "Serving" line. A server that
# cannot start (a port taken by another program, say) gets two more tries on other ports.
start_server() {
  local name=$1; shift
  local out=$LOG_DIR/$name.server.log try i
  for ((try = 0; try < 3; ++try)); do
    PORT=$((PORT + 1))
    rm -f "$out"  # its "Serving" line must be this process's, not the previous scenario's
    # shellcheck disable=SC2068
    taskset -c 1 $@ 127.0.0.1 "$PORT" >"$out" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < 200; ++i)); do
      grep -q Serving "$out" 2>/dev/null && return 0
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    log "$name did not start on port $PORT: $(tail -n 2 "$out" 2>/dev/null | tr '\n' ' ')"
    stop_server
  done
  return 1
}

stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run_echo NAME COMMAND SCENARIO CONNS SIZE ROUND
run_echo() {
  local name=$1 cmd=$2 scenario=$3 conns=$4 size=$5 round=$6
  start_server "$name" "$cmd" || { FAILED+=("$name/$scenario"); return 0; }
  local load line rss
  load=$(loadavg)
  if line=$(taskset -c 0 "$PEER_DIR/loadgen" -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP" \
              -p "$SERVER_PID" 127.0.0.1 "$PORT" 2>>"$LOG_DIR/$name.loadgen.log" | grep '^RESULT'); then
    rss=$(peak_rss_kb "$SERVER_PID")
    echo "${line/RESULT/RESULT server=$name scenario=$scenario round=$round} rss_kb=$rss load=$load" | tee -a "$RESULTS"
  else
    log "$name $scenario FAILED (see $LOG_DIR/$name.loadgen.log)"
    FAILED+=("$name/$scenario")
  fi
  stop_server
}

# wrk's "1.63ms" / "870.00us" / "1.02s" in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6; else m = 0
    print n * m }'
}

# run_http NAME COMMAND ROUND: wrk -t1 -c100, a warm-up run first.
run_http() {
  local name=$1 cmd=$2 round=$3
  start_server "$name" "$cmd" || { FAILED+=("$name/http"); return 0; }
  local url=http://127.0.0.1:$PORT/ out=$LOG_DIR/$name.wrk.log load t0 t1 rss
  load=$(loadavg)
  taskset -c 0 wrk -t1 -c100 -d1s "$url" >/dev/null 2>&1 || true  # warm-up (wrk counts whole seconds)
  t0=$(cpu_ticks "$SERVER_PID")
  if taskset -c 0 wrk -t1 -c100 -d"$(printf '%.0f' "$DURATION")s" --latency "$url" >"$out" 2>&1; then
    t1=$(cpu_ticks "$SERVER_PID")
    rss=$(peak_rss_kb "$SERVER_PID")
    local requests seconds rps p50 p99 errors
    requests=$(awk '/requests in/ {print $1}' "$out")
    seconds=$(awk '/requests in/ {s = $4; sub(/s,?$/, "", s); print s}' "$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    errors=$(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | tr '\n' ';' || true)
    [[ -n $errors ]] && log "$name http: $errors"
    local cpu
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", (b - a) / hz}')
    echo "RESULT server=$name scenario=http round=$round requests=$requests seconds=$seconds rps=$rps" \
         "p50_us=$p50 p99_us=$p99 server_cpu_s=$cpu rss_kb=$rss load=$load" | tee -a "$RESULTS"
  else
    log "$name http FAILED (see $out)"
    FAILED+=("$name/http")
  fi
  stop_server
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $START_LOAD; ${DURATION}s per scenario after ${WARMUP}s warm-up; $ROUNDS round(s)"
for ((round = 1; round <= ROUNDS; ++round)); do
  # Scenario by scenario, every server in turn: the servers compared in one table are measured
  # within a minute or two of each other.
  for spec in "${ECHO_SCENARIOS[@]}"; do
    IFS='|' read -r scenario conns size <<<"$spec"
    wanted "$scenario" "$SCENARIOS" || continue
    for entry in "${ECHO_SERVERS[@]}"; do
      name=${entry%%|*} cmd=${entry#*|}
      [[ -n ${SERVERS:-} ]] && ! wanted "$name" "$SERVERS" && continue
      exe=${cmd%% *}
      [[ -x $exe ]] || command -v "$exe" >/dev/null || { log "skipping $name: no $exe"; continue; }
      run_echo "$name" "$cmd" "$scenario" "$conns" "$size" "$round"
    done
  done
  if wanted http "$SCENARIOS"; then
    for entry in "${HTTP_SERVERS[@]}"; do
      name=${entry%%|*} cmd=${entry#*|}
      [[ -n ${SERVERS:-} ]] && ! wanted "$name" "$SERVERS" && continue
      exe=${cmd%% *}
      [[ -x $exe ]] || command -v "$exe" >/dev/null || { log "skipping $name: no $exe"; continue; }
      run_http "$name" "$cmd" "$round"
    done
  fi
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average after: $END_LOAD"

QUICK_ARG=()
((QUICK)) && QUICK_ARG=(--quick)
"$PYTHON" bench/server_chart.py --results "$RESULTS" --table "$TABLE" --chart "$CHART" \
  --load "before $START_LOAD, after $END_LOAD" --duration "$DURATION" "${QUICK_ARG[@]}"
log "table written to $TABLE, chart to $CHART"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
