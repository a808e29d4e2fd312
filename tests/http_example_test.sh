#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/http_hello_server with curl: GET / answers 200 "Hello, World!" over one
# kept-alive connection, other paths 404, other methods 405, HTTP/1.0 closes.
# Usage: http_example_test.sh <http_hello_server binary> <curl>
set -euo pipefail
server_bin=$1
curl=${2:-curl}
out=$(mktemp)
"$server_bin" 127.0.0.1 0 >"$out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$out")
  [[ -n "$port" ]] && break
  sleep 0.05
done
[[ -n "$port" ]] || { echo "server did not start:"; cat "$out"; exit 1; }
url="http://127.0.0.1:$port"

fail() { echo "FAIL: $*"; exit 1; }

# Two requests on one connection (keep-alive): curl reports the reuse.
trace=$("$curl" -sv "$url/" "$url/" 2>&1)
[[ $(grep -c '^< HTTP/1.1 200 OK' <<<"$trace") == 2 ]] || fail "expected two 200s: $trace"
grep -q 'Re-using existing connection' <<<"$trace" || fail "connection was not kept alive: $trace"
[[ $("$curl" -s "$url/") == "Hello, World!" ]] || fail "wrong body"
[[ $("$curl" -s -o /dev/null -w '%{http_code}' "$url/missing") == 404 ]] || fail "expected 404"
[[ $("$curl" -s -o /dev/null -w '%{http_code}' -X POST "$url/") == 405 ]] || fail "expected 405"
[[ $("$curl" -s --http1.0 "$url/") == "Hello, World!" ]] || fail "HTTP/1.0"
echo "http_hello_server OK on port $port"
