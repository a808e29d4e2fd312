#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/https_get against `openssl s_server -www` with a throwaway certificate.
# Usage: https_example_test.sh <https_get binary>
set -euo pipefail
client_bin=$1
dir=$(mktemp -d)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 10000))
  openssl s_server -quiet -www -accept "$port" -cert "$dir/cert.pem" -key "$dir/key.pem" >"$dir/server.log" 2>&1 &
  pid=$!
  sleep 0.3
  kill -0 "$pid" 2>/dev/null && break  # else the port was taken: another one
  pid=
done
[[ -n "$pid" ]] || { echo "openssl s_server did not start"; cat "$dir/server.log"; exit 1; }
reply=$("$client_bin" localhost / "$port" "$dir/cert.pem")
grep -q "^HTTP/1.0 200 ok$" <<<"$reply" || { echo "FAIL: $reply"; exit 1; }
grep -q "more bytes (TLSv1.3)$" <<<"$reply" || { echo "FAIL: $reply"; exit 1; }
# Without our certificate among the trusted ones, the handshake must fail.
if "$client_bin" localhost / "$port" >"$dir/untrusted.log" 2>&1; then echo "FAIL: untrusted server accepted"; exit 1; fi
grep -q "certificate verify failed" "$dir/untrusted.log" || { echo "FAIL:"; cat "$dir/untrusted.log"; exit 1; }
echo "https example OK"
