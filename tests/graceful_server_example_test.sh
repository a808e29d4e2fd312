#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/graceful_server: on SIGTERM it refuses new connections, finishes the
# request in flight, closes an idle connection, and exits 0; a request longer than the drain
# deadline is cut off at the deadline, and the server still exits 0.
# Usage: graceful_server_example_test.sh <graceful_server binary>
set -euo pipefail
bin=$1
out=$(mktemp)
pid=""
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -f "$out"' EXIT
fail() { echo "FAIL: $1"; cat "$out"; exit 1; }

start_server() {  # $1: drain seconds
  "$bin" 0 "$1" >"$out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's|^Serving on 127.0.0.1:\([0-9]*\)$|\1|p' "$out")
    [[ -n "$port" ]] && return 0
    sleep 0.05
  done
  fail "server did not start"
}

# 1. A request in flight is drained; an idle connection is closed; new ones are refused.
start_server 10
exec 3<>"/dev/tcp/127.0.0.1/$port"   # busy client
exec 4<>"/dev/tcp/127.0.0.1/$port"   # idle client
printf 'work 1\n' >&3
sleep 0.3
kill -TERM "$pid"
sleep 0.3
if (exec 5<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "accepted a connection after SIGTERM"; fi
read -r -t 10 reply <&3 || fail "no reply to the request in flight"
[[ "$reply" == "done 1" ]] || fail "reply was '$reply'"
if read -r -t 5 line <&4; then fail "idle connection got '$line' instead of EOF"; fi
wait "$pid" && code=0 || code=$?
pid=""
[[ $code -eq 0 ]] || fail "exit status $code"
grep -q '^Stopping: closed 1 idle connection(s), draining 1 request(s)' "$out" || fail "no drain message"
grep -qx 'Drained' "$out" || fail "did not drain"
exec 3<&- 4<&-

# 2. A request longer than the deadline is cut off at the deadline.
start_server 0.5
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'work 30\n' >&3
sleep 0.3
t0=$(date +%s%N)
kill -INT "$pid"
wait "$pid" && code=0 || code=$?
pid=""
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $code -eq 0 ]] || fail "exit status $code after the deadline"
(( elapsed_ms < 10000 )) || fail "took ${elapsed_ms} ms to stop"
grep -q '^Closing 1 connection(s) still open past the deadline' "$out" || fail "no deadline message"
exec 3<&-
echo "graceful_server example OK"
