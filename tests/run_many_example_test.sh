#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest check of examples/run_many: prefixed lines as they come, at most N at a time, the slow
# command killed at the timeout, and the exit status saying one failed.
# Usage: run_many_example_test.sh <run_many binary>
set -euo pipefail
bin=$1
start=$(date +%s%N)
set +e
out=$("$bin" -j 2 -t 1 'echo one; echo two' 'sleep 30' 'echo three >&2' 2>&1)
code=$?
set -e
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
fail() { echo "FAIL: $1"; echo "$out"; exit 1; }
grep -qx '\[echo one; echo two\] one' <<<"$out" || fail "first line"
grep -qx '\[echo one; echo two\] two' <<<"$out" || fail "second line"
grep -qx '\[echo three >&2\] three' <<<"$out" || fail "stderr goes to stdout"
grep -qx '\[sleep 30\] killed after 1 s' <<<"$out" || fail "timeout kill"
[[ $code -eq 1 ]] || fail "exit status $code, not 1"
(( elapsed_ms < 20000 )) || fail "took ${elapsed_ms} ms: the sleep was not killed"
"$bin" -j 1 'true' 'echo ok' >/dev/null || fail "all succeeded but exit status was not 0"
echo "run_many example OK (${elapsed_ms} ms)"
