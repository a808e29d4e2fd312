#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/tcp_echo_server and examples/tcp_echo_client working together.
# Usage: echo_example_test.sh <tcp_echo_server binary> <tcp_echo_client binary>
set -euo pipefail
server_bin=$1
client_bin=$2
out=$(mktemp)
"$server_bin" 127.0.0.1 0 >"$out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's|^Serving on 127.0.0.1:\([0-9]*\).*|\1|p' "$out")
  [[ -n "$port" ]] && break
  sleep 0.05
done
[[ -n "$port" ]] || { echo "server did not start:"; cat "$out"; exit 1; }
reply=$("$client_bin" 127.0.0.1 "$port" "ping pong")
grep -q "^Received: 'ping pong'$" <<<"$reply" || { echo "FAIL: $reply"; exit 1; }
sleep 0.1
grep -q "^Received 'ping pong' from 127.0.0.1:" "$out" || { echo "FAIL: server said"; cat "$out"; exit 1; }
echo "echo examples OK"
