#!/usr/bin/env bash
# Fuzzes StreamReader for a given time: fuzz/run.sh [SECONDS] [JOBS]   (defaults: 60 s, 1 job)
#
# Installs what is missing (scripts/install-deps.sh), configures and builds the `fuzz` preset
# (clang 14, libFuzzer + ASan + UBSan) in build/fuzz, then runs stream_reader_fuzz on JOBS cores
# for SECONDS seconds each, starting from the seeds in fuzz/corpus/ plus what earlier runs found
# (build/fuzz/corpus). Then replays the corpus on CPython's asyncio.StreamReader (fuzz/crosscheck.py)
# to check the fuzzer's reference model. Prints the CPU time of the fuzzing, the number of
# executions, and PASS or FAIL.
# A failing input is saved in build/fuzz/artifacts/; replay it with
#   build/fuzz/fuzz/stream_reader_fuzz build/fuzz/artifacts/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${2:-1}
[[ $secs =~ ^[0-9]+$ && $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || { echo "usage: fuzz/run.sh [SECONDS] [JOBS]" >&2; exit 2; }

scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

out=build/fuzz
bin=$out/fuzz/stream_reader_fuzz
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"
cp -n fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
rm -f "$out"/logs/*.log
before_artifacts=$(find "$out/artifacts" -type f | wc -l)

args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$PWD/$out/artifacts/")
echo "fuzz: $bin for ${secs}s x $jobs job(s), corpus $out/corpus"
TIMEFORMAT='%3U %3S %3R'
set +e
if ((jobs == 1)); then
  { time "$bin" "${args[@]}" "$out/corpus" >"$out/logs/fuzz-0.log" 2>&1; } 2>"$out/logs/time.txt"
  rc=$?
else
  # -jobs/-workers: JOBS processes, each fuzzing for SECONDS (logs in fuzz-N.log of the cwd).
  { time (cd "$out/logs" && "$PWD/../fuzz/stream_reader_fuzz" "${args[@]}" -jobs="$jobs" -workers="$jobs" \
      "$PWD/../corpus" >runner.log 2>&1); } 2>"$out/logs/time.txt"
  rc=$?
fi
set -e

read -r user sys real <"$out/logs/time.txt"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
execs=$(cat "$out"/logs/fuzz-*.log 2>/dev/null | awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
after_artifacts=$(find "$out/artifacts" -type f | wc -l)
crashes=$(cat "$out"/logs/*.log | grep -cE '^==[0-9]+==ERROR|MISMATCH|runtime error|deadly signal' || true)

echo "fuzz: wall ${real}s, CPU ${cpu}s (user ${user}s + sys ${sys}s), ${execs} executions, corpus $(ls "$out/corpus" | wc -l) inputs"

# The model itself against CPython: replay the corpus on Python's asyncio.StreamReader.
xrc=0
if ((rc == 0)); then
  STREAM_READER_FUZZ_JSON=1 "$bin" -runs=0 "$out/corpus" 2>/dev/null | python3 fuzz/crosscheck.py || xrc=$?
fi

if ((rc == 0 && xrc == 0 && after_artifacts == before_artifacts && crashes == 0)); then
  echo "PASS: stream_reader_fuzz, ${cpu} CPU-seconds, ${execs} executions, no crash and no mismatch"
else
  grep -hE -A12 'MISMATCH|ERROR|runtime error|deadly signal' "$out"/logs/*.log | head -60 || true
  echo "FAIL: stream_reader_fuzz (exit $rc, crosscheck exit $xrc, $((after_artifacts - before_artifacts)) new artifact(s) in $out/artifacts)"
  exit 1
fi
