#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one libFuzzer target for a given time: fuzz/run.sh [SECONDS] [JOBS] [TARGET]
#   (defaults: 60 s, 1 job, stream_reader_fuzz; TARGET is stream_reader_fuzz or tls_record_fuzz)
#
# Installs what is missing (scripts/install-deps.sh), configures and builds the `fuzz` preset
# (clang 14, libFuzzer + ASan + UBSan) in build/fuzz, then runs TARGET on JOBS cores for SECONDS
# seconds each, starting from the target's committed seeds plus what earlier runs found:
#   stream_reader_fuzz  seeds fuzz/corpus/      corpus build/fuzz/corpus      logs build/fuzz/logs
#   tls_record_fuzz     seeds fuzz/corpus_tls/  corpus build/fuzz/corpus_tls  logs build/fuzz/logs_tls
# For stream_reader_fuzz it then replays the corpus on CPython's asyncio.StreamReader
# (fuzz/crosscheck.py) to check the fuzzer's reference model; the TLS target checks itself.
# Prints the CPU time of the fuzzing, the number of executions, and PASS or FAIL.
# A failing input is saved in build/fuzz/artifacts/ (build/fuzz/artifacts_tls/ for the TLS
# target); replay it with
#   build/fuzz/fuzz/stream_reader_fuzz build/fuzz/artifacts/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${2:-1}
target=${3:-stream_reader_fuzz}
usage="usage: fuzz/run.sh [SECONDS] [JOBS] [stream_reader_fuzz|tls_record_fuzz]"
[[ $secs =~ ^[0-9]+$ && $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || { echo "$usage" >&2; exit 2; }
case $target in
  stream_reader_fuzz) seeds=fuzz/corpus suffix="" ;;
  tls_record_fuzz) seeds=fuzz/corpus_tls suffix=_tls ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

out=build/fuzz
bin=$out/fuzz/$target
corpus=$out/corpus$suffix
logs=$out/logs$suffix
artifacts=$out/artifacts$suffix
mkdir -p "$corpus" "$artifacts" "$logs"
cp -n "$seeds"/* "$corpus/" 2>/dev/null || true
rm -f "$logs"/*.log
before_artifacts=$(find "$artifacts" -type f | wc -l)

args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$PWD/$artifacts/")
echo "fuzz: $bin for ${secs}s x $jobs job(s), corpus $corpus"
TIMEFORMAT='%3U %3S %3R'
set +e
if ((jobs == 1)); then
  { time "$bin" "${args[@]}" "$corpus" >"$logs/fuzz-0.log" 2>&1; } 2>"$logs/time.txt"
  rc=$?
else
  # -jobs/-workers: JOBS processes, each fuzzing for SECONDS (logs in fuzz-N.log of the cwd).
  { time (cd "$logs" && "$PWD/../fuzz/$target" "${args[@]}" -jobs="$jobs" -workers="$jobs" \
      "$PWD/../corpus$suffix" >runner.log 2>&1); } 2>"$logs/time.txt"
  rc=$?
fi
set -e

read -r user sys real <"$logs/time.txt"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
execs=$(cat "$logs"/fuzz-*.log 2>/dev/null | awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
after_artifacts=$(find "$artifacts" -type f | wc -l)
crashes=$(cat "$logs"/*.log | grep -cE '^==[0-9]+==ERROR|MISMATCH|DEFECT|runtime error|deadly signal' || true)

echo "fuzz: wall ${real}s, CPU ${cpu}s (user ${user}s + sys ${sys}s), ${execs} executions, corpus $(ls "$corpus" | wc -l) inputs"

# stream_reader_fuzz's model itself against CPython: replay the corpus on Python's
# asyncio.StreamReader.
xrc=0
if ((rc == 0)) && [[ $target == stream_reader_fuzz ]]; then
  STREAM_READER_FUZZ_JSON=1 "$bin" -runs=0 "$corpus" 2>/dev/null | python3 fuzz/crosscheck.py || xrc=$?
fi

if ((rc == 0 && xrc == 0 && after_artifacts == before_artifacts && crashes == 0)); then
  echo "PASS: $target, ${cpu} CPU-seconds, ${execs} executions, no crash and no mismatch"
else
  grep -hE -A12 'MISMATCH|DEFECT|ERROR|runtime error|deadly signal' "$logs"/*.log | head -60 || true
  echo "FAIL: $target (exit $rc, crosscheck exit $xrc, $((after_artifacts - before_artifacts)) new artifact(s) in $artifacts)"
  exit 1
fi
