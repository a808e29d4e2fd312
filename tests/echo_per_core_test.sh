#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/echo_per_core, in both designs (SO_REUSEPORT and one acceptor handing
# sockets over): two loops on one port, 20 clients (examples/tcp_echo_client), every echo right,
# and both loops took connections.
# Usage: echo_per_core_test.sh <echo_per_core binary> <tcp_echo_client binary>
set -euo pipefail
server_bin=$1
client_bin=$2
out=$(mktemp)
pid=""
cleanup() {
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -f "$out"
}
trap cleanup EXIT

for mode in reuse_port handoff; do
  flags=(--loops 2 --log)
  [[ $mode == handoff ]] && flags+=(--handoff)
  : >"$out"
  "$server_bin" "${flags[@]}" 127.0.0.1 0 >"$out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's|^Serving on 127.0.0.1:\([0-9]*\) (2 loops, '"$mode"').*|\1|p' "$out")
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { echo "$mode: server did not start:"; cat "$out"; exit 1; }
  replies=()
  for i in $(seq 1 20); do  # in parallel: sanitizer builds start slowly
    replies+=("$(mktemp)")
    "$client_bin" 127.0.0.1 "$port" "hello $i" >"${replies[-1]}" 2>&1 &
  done
  wait_clients=0
  for job in $(jobs -p); do [[ $job == "$pid" ]] || wait "$job" || wait_clients=1; done
  for i in $(seq 1 20); do
    grep -q "^Received: 'hello $i'$" "${replies[i-1]}" || { echo "$mode: FAIL: $(cat "${replies[i-1]}")"; exit 1; }
    rm -f "${replies[i-1]}"
  done
  ((wait_clients == 0)) || { echo "$mode: a client failed"; exit 1; }
  sleep 0.1
  # Both designs spread the connections: reuse_port by the kernel's hash of each connection's
  # addresses (all 20 on one loop: about one chance in 500,000), handoff by dealing them out.
  for loop in 0 1; do
    grep -q "^loop $loop: connection$" "$out" || { echo "$mode: loop $loop took no connection:"; cat "$out"; exit 1; }
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  echo "echo_per_core $mode OK"
done
