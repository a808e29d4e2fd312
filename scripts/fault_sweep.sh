#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the networking suites under injected system-call faults (tests/fault/fault_inject.cpp) for
# many seeds, in both modes, and says how many faults were injected and survived:
#   transparent  EINTR, EAGAIN, short reads and writes, ECONNABORTED, close() saying EINTR:
#                every test must pass;
#   hard         also ECONNRESET, EPIPE, ENOMEM, ENOBUFS, EMFILE, ECONNREFUSED, EAI_AGAIN,
#                epoll_ctl and eventfd failures: tests may fail, but only as failed assertions
#                or clean exceptions — no crash, no sanitizer report, no socket left open at exit.
#
#   scripts/fault_sweep.sh [FIRST_SEED] [LAST_SEED]     (defaults: 1 20)
#
# BUILD_DIR (default build/asan: `cmake --preset asan && cmake --build build/asan`), SUITES (the
# test executables), MODES ("transparent hard") and RATE (one call in RATE faulted, default 4)
# can be set. Logs of runs that broke a rule go to $BUILD_DIR/fault-logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}
last=${2:-20}
BUILD_DIR=${BUILD_DIR:-build/asan}
SUITES=${SUITES:-"transports_test streams_test ssl_test datagram_test socket_test unix_test sigpipe_test"}
MODES=${MODES:-"transparent hard"}
RATE=${RATE:-4}
# As tests/CMakeLists.txt's ASYNCIO_FAULT_EXCLUDED: tests of the kernel's behaviour, not ours.
EXCLUDED=${EXCLUDED:-"socket.SocketpairIsConnectedNonBlockingAndCloseOnExec:socket_calls.RecvIntoFillsCallerBuffer:socket_calls.ReaderAndWriterMayWaitAtTheSameTime:transport_datagram.SendsQueueWhileTheSocketWouldBlockAndGoOutInOrder"}
lib=$BUILD_DIR/tests/libasyncio_fault_inject.so
[[ -f $lib ]] || cmake --build "$BUILD_DIR" --target asyncio_fault_inject $SUITES >/dev/null || exit 1
logs=$BUILD_DIR/fault-logs
mkdir -p "$logs"
report=$(mktemp)
broken=0 runs=0 failed_tests=0
for mode in $MODES; do
  for ((seed = first; seed <= last; ++seed)); do
    for suite in $SUITES; do
      log=$logs/$suite.$mode.$seed.log
      LD_PRELOAD=$PWD/$lib ASYNCIO_FAULTS=$seed ASYNCIO_FAULTS_MODE=$mode ASYNCIO_FAULTS_RATE=$RATE \
        ASYNCIO_FAULTS_REPORT=$report ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1 \
        "$BUILD_DIR/tests/$suite" --gtest_filter="-$EXCLUDED" >"$log" 2>&1
      rc=$?
      runs=$((runs + 1))
      why=
      if ((rc > 1)); then why="exit status $rc (a crash or an abort)"; fi
      if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|terminate called" "$log"; then why="a sanitizer report"; fi
      if grep -qE "sockets open at exit: [1-9]" "$log"; then why="${why:+$why, }sockets left open"; fi
      if [[ $mode == transparent && $rc -ne 0 && -z $why ]]; then why="a test failed under transparent faults"; fi
      if [[ -n $why ]]; then
        broken=$((broken + 1))
        echo "BROKEN $suite $mode seed $seed: $why (log: $log)"
      else
        if ((rc == 1)); then failed_tests=$((failed_tests + $(grep -c '^\[  FAILED  \] [A-Za-z]' "$log" || true))); fi
        rm -f "$log"
      fi
    done
  done
done
total=$(awk '{ for (i = 1; i <= NF; ++i) if ($i == "faults") s += $(i - 1) } END { print s + 0 }' "$report")
calls=$(awk '{ for (i = 1; i <= NF; ++i) if ($i == "calls") s += $(i - 1) } END { print s + 0 }' "$report")
echo "fault sweep: seeds $first-$last, modes: $MODES; $runs runs of the suites; $total faults injected in $calls calls"
echo "  hard-mode test failures (clean: assertions or documented exceptions): $failed_tests"
rm -f "$report"
if ((broken)); then echo "FAIL: $broken runs broke a rule"; exit 1; fi
echo "PASS: every fault survived"
