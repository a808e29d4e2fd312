#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where the time of an echo server goes: system calls per request, and optionally a
# perf profile and a callgrind instruction count, under the echo 1 KiB × 100 connections load.
#
#   bench/profile_server.sh [--record] [--callgrind] [NAME...]
#
# NAME: c_epoll c_uring c_uring_multishot ours_protocol ours_streams libuv asio uvloop_protocols uvloop_streams node
# (default: c_epoll ours_protocol ours_streams libuv asio). Run bench/run_server.sh once first:
# it builds the servers and the load generator. Server on CPU 1, load generator on CPU 0, as there.
#
# Always: `perf stat` on syscall tracepoints, attached to the server while the load generator runs
# (DURATION seconds, default 4): system calls and server CPU time per request.
# --record: `perf record -e cpu-clock -g` (this VM has no hardware counters); the top symbols,
#   kernel included, go to build/bench-server-logs/NAME.perf.txt.
# --callgrind: the server under valgrind --tool=callgrind for a short run (user-space
#   instructions only); instructions per request and the top functions go to
#   build/bench-server-logs/NAME.callgrind.txt. The server runs ~50× slower there, so the load
#   generator's connections queue up and each epoll_wait returns many events: it counts the
#   work per request, not the polling.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
PEER_DIR=build/bench-peers
LOG_DIR=build/bench-server-logs
DURATION=${DURATION:-4}
PYTHON=/usr/bin/python3
RECORD=0 CALLGRIND=0 NAMES=()
for arg in "$@"; do
  case $arg in
    --record) RECORD=1 ;;
    --callgrind) CALLGRIND=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "profile_server.sh: unknown option $arg" >&2; exit 2 ;;
    *) NAMES+=("$arg") ;;
  esac
done
((${#NAMES[@]})) || NAMES=(c_epoll ours_protocol ours_streams libuv asio)
mkdir -p "$LOG_DIR"

command_of() {
  case $1 in
    c_epoll) echo "$PEER_DIR/echo_c_epoll" ;;
    c_uring) echo "$PEER_DIR/echo_c_uring" ;;
    c_uring_multishot) echo "$PEER_DIR/echo_c_uring --multishot" ;;
    libuv) echo "$PEER_DIR/echo_libuv" ;;
    asio) echo "$PEER_DIR/echo_asio" ;;
    ours_protocol) echo "$BUILD_DIR/bench/echo_protocol" ;;
    ours_streams) echo "$BUILD_DIR/bench/echo_streams" ;;
    uvloop_protocols) echo "$PYTHON bench/server/echo_asyncio.py --uvloop protocols" ;;
    uvloop_streams) echo "$PYTHON bench/server/echo_asyncio.py --uvloop streams" ;;
    node) echo "node bench/server/echo_node.js" ;;
    *) echo "profile_server.sh: unknown server $1" >&2; return 1 ;;
  esac
}

SYSCALLS=(recvfrom sendto read write readv writev recvmsg sendmsg epoll_wait epoll_pwait epoll_ctl ioctl io_uring_enter)
PORT=$((40000 + RANDOM % 10000))
SERVER_PID=

start_server() {  # start_server NAME [PREFIX...]: PREFIX is e.g. valgrind
  local name=$1; shift
  PORT=$((PORT + 1))
  local out=$LOG_DIR/$name.profile-server.log
  rm -f "$out"  # its "Serving" line must be this process's
  # shellcheck disable=SC2046
  taskset -c 1 "$@" $(command_of "$name") 127.0.0.1 "$PORT" >"$out" 2>&1 &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 600; ++i)); do
    grep -q Serving "$out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "profile_server.sh: $name did not start (see $out)" >&2
  return 1
}
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT

loadgen() {  # loadgen SECONDS WARMUP [OPTIONS...]
  local d=$1 w=$2; shift 2
  taskset -c 0 "$PEER_DIR/loadgen" -c 100 -s 1024 -d "$d" -w "$w" "$@" -p "$SERVER_PID" 127.0.0.1 "$PORT"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

printf '| server | requests | server CPU µs/request | syscalls/request | %s |\n' "$(IFS='|'; echo "${SYSCALLS[*]}" | sed 's/|/ | /g')"
printf '|---|---:|---:|---:|%s\n' "$(printf -- '---:|%.0s' "${SYSCALLS[@]}")"
for name in "${NAMES[@]}"; do
  start_server "$name" || continue
  loadgen 1 0 >/dev/null  # warm-up (JITs, allocators), on connections of its own
  events=(-e raw_syscalls:sys_enter)
  for s in "${SYSCALLS[@]}"; do events+=(-e "syscalls:sys_enter_$s"); done
  perf stat -x, "${events[@]}" -p "$SERVER_PID" -o "$LOG_DIR/$name.perf-stat.csv" &
  perf_pid=$!
  sleep 0.3
  line=$(loadgen "$DURATION" 0 | grep '^RESULT' || true)
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  stop_server
  [[ -n $line ]] || { echo "| $name | failed |"; continue; }
  requests=$(field requests "$line")
  cpu=$(field server_cpu_s "$line")
  row="| $name | $requests | $(awk -v c="$cpu" -v r="$requests" 'BEGIN {printf "%.2f", c * 1e6 / r}')"
  total=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$LOG_DIR/$name.perf-stat.csv")
  row+=" | $(awk -v n="$total" -v r="$requests" 'BEGIN {printf "%.2f", n / r}')"
  for s in "${SYSCALLS[@]}"; do
    n=$(awk -F, -v e="syscalls:sys_enter_$s" '$3 == e {print $1}' "$LOG_DIR/$name.perf-stat.csv")
    row+=" | $(awk -v n="${n:-0}" -v r="$requests" 'BEGIN {v = n / r; if (v == 0) print "0"; else printf "%.3f", v}')"
  done
  echo "$row |"
  if ((RECORD)); then
    # A second run of its own: the syscall tracepoints above cost time of their own.
    start_server "$name" || continue
    loadgen 1 0 >/dev/null
    perf record -q -e cpu-clock -g -p "$SERVER_PID" -o "$LOG_DIR/$name.perf.data" 2>/dev/null &
    recorder_pid=$!
    sleep 0.3
    rec_line=$(loadgen "$DURATION" 0 | grep '^RESULT' || true)
    kill -INT "$recorder_pid"; wait "$recorder_pid" 2>/dev/null || true
    stop_server
    echo "perf record run: $rec_line" >"$LOG_DIR/$name.perf.txt"
    perf report -i "$LOG_DIR/$name.perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
      grep -v '^#' | grep -v '^$' >>"$LOG_DIR/$name.perf.txt" || true
    perf report -i "$LOG_DIR/$name.perf.data" --stdio --no-children --sort dso,sym --percent-limit 0.7 \
      -g none 2>/dev/null | grep -v '^#' | grep -v '^$' >>"$LOG_DIR/$name.perf.txt" || true
  fi
done

if ((CALLGRIND)); then
  for name in "${NAMES[@]}"; do
    out=$LOG_DIR/$name.callgrind.out
    rm -f "$out" "$out".*
    start_server "$name" valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no || continue
    loadgen 1 0 >/dev/null  # warm-up, on connections of its own
    sleep 0.5
    # Count only the measured run: zero the counters before it, dump after it (the dump holds
    # the work of the run's requests plus its 100 accepts).
    # -k 3: the connections stay open, idle, while the counters are dumped; their closing is
    # not counted.
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    result=$LOG_DIR/$name.callgrind-loadgen.txt
    loadgen 3 0 -k 3 >"$result" &
    lg=$!
    until grep -q '^RESULT' "$result" 2>/dev/null || ! kill -0 "$lg" 2>/dev/null; do sleep 0.1; done
    sleep 0.3
    callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
    wait "$lg" || true
    line=$(grep '^RESULT' "$result" || true)
    stop_server
    requests=$(field requests "$line")
    dump=$(ls -t "$out".* 2>/dev/null | head -1)
    [[ -n $dump ]] || { echo "profile_server.sh: no callgrind dump for $name" >&2; continue; }
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    {
      echo "$name: $line"
      echo "instructions per request: $(awk -v t="$total" -v r="$requests" 'BEGIN {printf "%.0f", t / r}')"
      echo "self cost per function, instructions per request (the frames that were running when the"
      echo "counters were zeroed, at 100%, are left out):"
      callgrind_annotate --threshold=100 --inclusive=no --auto=no "$dump" 2>/dev/null |
        awk -v r="$requests" '/^ *[0-9,]+ \( *[0-9.]+%\)/ && !/100\.0%/ && !/PROGRAM TOTALS/ {
          n = $1; gsub(",", "", n); sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "")
          if (n / r >= 1) printf "%8.1f  %s\n", n / r, substr($0, 1, 160) }' | head -45
      echo
      echo "inclusive:"
      callgrind_annotate --threshold=100 --inclusive=yes --auto=no "$dump" 2>/dev/null |
        awk -v r="$requests" '/^ *[0-9,]+ \( *[0-9.]+%\)/ && !/PROGRAM TOTALS/ {
          n = $1; gsub(",", "", n); sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "")
          if (n / r >= 1) printf "%8.1f  %s\n", n / r, substr($0, 1, 160) }' | head -45
    } >"$LOG_DIR/$name.callgrind.txt"
    echo "$name: $(awk -v t="$total" -v r="$requests" 'BEGIN {printf "%.0f", t / r}') instructions per request" \
         "(user space; $requests requests; details in $LOG_DIR/$name.callgrind.txt)"
  done
fi
