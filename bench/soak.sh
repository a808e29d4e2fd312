#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak test (not a CI test): a plain and a TLS line-echo server written with the library
# (bench/server/soak_server.cpp) under ~CONNS concurrent connections from a load generator also
# written with it (bench/server/soak_load.cpp) for DURATION seconds, on 127.0.0.1 only. The load
# mixes checked echoes of 1 B..64 KiB lines, slow readers (the servers' flow control pauses),
# clients that reset mid-stream (SO_LINGER 0), over-long lines (LimitOverrunError, answered with
# an error line) and connect-and-close clients; see soak_load.cpp for the exact mix.
#
#   bench/soak.sh                         # 10 minutes, 1,000 connections (500 plain + 500 TLS)
#   DURATION=60 CONNS=200 bench/soak.sh   # a quick run
#
# Every INTERVAL seconds one line per server: elapsed time, RSS (VmRSS), malloc's heap in use
# (mallinfo2: what a leak grows, without the high-water mark a fragmented heap keeps in RSS),
# open descriptors, connections served and still open, lines and bytes echoed, errors caused on
# purpose (resets, over-long lines) and unexpected ones (the server's plus those the load
# generator saw on it), and how often the server's drain() had to wait.
# At the end, after the load generator has stopped and the servers are idle, a summary with a
# PASS/FAIL per target, and the exit code is 1 if any target failed:
#   - RSS at the end of the load at most RSS_GROWTH % (default 5) above RSS after the first minute
#     (after half the run for runs shorter than two minutes);
#   - descriptors back to the count before the first client, no connection left open;
#   - no unexpected error, both servers alive, the load generator finished in time.
#
# Environment: DURATION (seconds, default 600), CONNS (default 1000, split evenly between the two
# servers), INTERVAL (default 10), RSS_GROWTH (percent, default 5), SEED (load generator's random
# seed, default 1), SNDBUF (the servers' SO_SNDBUF, default 65536; 0 leaves Linux's autotuning,
# which absorbs a slow reader's backlog in the kernel), BUILD_DIR (default build/bench, the bench
# preset, configured here if missing), LOG_DIR (default build/soak-logs: the programs' output and
# stats files, kept for a look afterwards).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
CONNS=${CONNS:-1000}
INTERVAL=${INTERVAL:-10}
RSS_GROWTH=${RSS_GROWTH:-5}
SEED=${SEED:-1}
SNDBUF=${SNDBUF:-65536}
BUILD_DIR=${BUILD_DIR:-build/bench}
LOG_DIR=${LOG_DIR:-build/soak-logs}
# shellcheck disable=SC2034  # read by bench/lib.sh's log
SCRIPT=soak.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh  # log, build_our_bench

for arg in "$@"; do
  case $arg in
    -h|--help) sed -n '3,30p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument: $arg (settings are environment variables, see --help)" >&2; exit 2 ;;
  esac
done

build_our_bench soak_server || exit 1
build_our_bench soak_load || exit 1
BIN=$BUILD_DIR/bench

# Each connection is a descriptor in the load generator and one in a server, plus headroom.
need_fds=$((CONNS + 256))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need_fds)); then
  log "RLIMIT_NOFILE hard limit $hard is below the $need_fds descriptors CONNS=$CONNS needs"
  exit 1
fi
ulimit -n "$hard" 2>/dev/null || ulimit -n "$need_fds"

mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.stats "$LOG_DIR"/*.log
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# A self-signed certificate for localhost and 127.0.0.1; the load generator trusts exactly it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# field FILE KEY [NAME]: KEY's value in a stats file (in its line name=NAME if given).
field() {
  awk -v k="$2" -v n="${3:-}" 'n == "" || $1 == "name=" n {
    for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' "$1"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

NAMES=(plain tls)
declare -A PID STATS
"$BIN/soak_server" --stats "$LOG_DIR/plain.stats" --sndbuf "$SNDBUF" >"$LOG_DIR/plain.log" 2>&1 &
PID[plain]=$!
PIDS+=("$!")
"$BIN/soak_server" --stats "$LOG_DIR/tls.stats" --sndbuf "$SNDBUF" --readuntil \
  --tls "$TMP/cert.pem" "$TMP/key.pem" >"$LOG_DIR/tls.log" 2>&1 &
PID[tls]=$!
PIDS+=("$!")
STATS[plain]=$LOG_DIR/plain.stats
STATS[tls]=$LOG_DIR/tls.stats
for _ in $(seq 100); do
  [[ -s ${STATS[plain]} && -s ${STATS[tls]} ]] && break
  sleep 0.1
done
for s in "${NAMES[@]}"; do
  if [[ ! -s ${STATS[$s]} ]] || ! kill -0 "${PID[$s]}" 2>/dev/null; then
    log "the $s server did not start:"
    cat "$LOG_DIR/$s.log" >&2
    exit 1
  fi
done
sleep 1  # let each server settle before the baseline
declare -A FD0 RSS0 HEAP0 RSS_REF RSS_END
for s in "${NAMES[@]}"; do
  FD0[$s]=$(fd_count "${PID[$s]}")
  HEAP0[$s]=$(field "${STATS[$s]}" heap)
  RSS0[$s]=$(rss_kib "${PID[$s]}")
done

echo "soak: DURATION=$DURATION s, CONNS=$CONNS ($((CONNS - CONNS / 2)) plain + $((CONNS / 2)) TLS), seed $SEED," \
  "SO_SNDBUF $SNDBUF, 127.0.0.1"
echo "soak: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)," \
  "nice $(nice), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
for s in "${NAMES[@]}"; do
  echo "soak: $s server pid ${PID[$s]} port $(field "${STATS[$s]}" port), baseline ${FD0[$s]} fds," \
    "RSS $(mib "${RSS0[$s]}") MiB"
done

"$BIN/soak_load" --plain-port "$(field "${STATS[plain]}" port)" --tls-port "$(field "${STATS[tls]}" port)" \
  --cafile "$TMP/cert.pem" --conns "$CONNS" --duration "$DURATION" --seed "$SEED" \
  --stats "$LOG_DIR/load.stats" >"$LOG_DIR/load.log" 2>&1 &
LOAD=$!
PIDS+=("$LOAD")

printf '%6s %-5s %8s %9s %5s %8s %6s %9s %10s | %7s %8s | %10s %8s\n' time server "RSS MiB" "heap MiB" fds conns open \
  lines "MiB echoed" resets overlong unexpected "(drains)"
# row TIME NAME: one line of the table from the server's stats and the load generator's.
row() {
  local s=$2 f=${STATS[$2]} client_unexpected=0
  [[ -s $LOG_DIR/load.stats ]] && client_unexpected=$(field "$LOG_DIR/load.stats" unexpected "$s")
  printf '%6s %-5s %8s %9s %5s %8s %6s %9s %10s | %7s %8s | %10s %8s\n' "$1" "$s" "$(mib "$(rss_kib "${PID[$s]}")")" \
    "$(mib $(($(field "$f" heap) / 1024)))" "$(fd_count "${PID[$s]}")" "$(field "$f" connections)" "$(field "$f" active)" "$(field "$f" lines)" \
    "$(awk -v b="$(field "$f" bytes)" 'BEGIN { printf "%.0f", b / 1048576 }')" "$(field "$f" resets)" \
    "$(field "$f" overlong)" "$(($(field "$f" unexpected) + client_unexpected))" "($(field "$f" drain_waits))"
}

FAILURES=()
ref_at=$((DURATION < 120 ? DURATION / 2 : 60))
start=$SECONDS
tick=0
# Everything in the load generator is bounded (scenarios time out after 120 s), so it ends
# shortly after DURATION; this is the backstop if it does not.
deadline=$((DURATION + 300))
while kill -0 "$LOAD" 2>/dev/null; do
  tick=$((tick + INTERVAL))
  while ((SECONDS - start < tick)) && kill -0 "$LOAD" 2>/dev/null; do sleep 1; done
  kill -0 "$LOAD" 2>/dev/null || break
  elapsed=$((SECONDS - start))
  for s in "${NAMES[@]}"; do
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
      FAILURES+=("the $s server died at ${elapsed} s (see $LOG_DIR/$s.log)")
      continue
    fi
    row "${elapsed}s" "$s"
    RSS_END[$s]=$(rss_kib "${PID[$s]}")
    [[ -z ${RSS_REF[$s]:-} ]] && ((elapsed >= ref_at)) && RSS_REF[$s]=${RSS_END[$s]}
  done
  ((${#FAILURES[@]})) && break
  if ((elapsed > deadline)); then
    FAILURES+=("the load generator was still running at ${elapsed} s; stopped")
    kill "$LOAD" 2>/dev/null || true
  fi
done
load_status=0
wait "$LOAD" || load_status=$?
load_seconds=$((SECONDS - start))
((load_status == 0)) || FAILURES+=("the load generator exited with status $load_status (see $LOG_DIR/load.log)")

# Idle: every connection gone (TLS closes may take a moment), then the descriptor count.
for _ in $(seq 60); do
  idle=1
  for s in "${NAMES[@]}"; do
    kill -0 "${PID[$s]}" 2>/dev/null || continue
    sleep 1.1  # a fresh stats line (written every second)
    if [[ $(field "${STATS[$s]}" library_active) != 0 || $(fd_count "${PID[$s]}") -gt ${FD0[$s]} ]]; then idle=0; fi
  done
  ((idle)) && break
done
echo "idle after the load (${load_seconds} s):"
for s in "${NAMES[@]}"; do
  kill -0 "${PID[$s]}" 2>/dev/null && row idle "$s"
done

echo
echo "load generator: $(grep -h '^soak_load' "$LOG_DIR/load.log" | sed 's/^soak_load //' | paste -sd';' | sed 's/;/; /g')"
echo "load generator: longest scenario (s):$(awk '$1 == "name=client" { for (i = 5; i <= NF; i++) printf " %s", $i }' \
  "$LOG_DIR/load.stats")"

verdict() { if [[ $1 == 1 ]]; then echo PASS; else echo FAIL; fi; }
echo
echo "summary                                    plain              tls        target"
declare -A LINE_RSS LINE_FD LINE_ERR
for s in "${NAMES[@]}"; do
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    FAILURES+=("the $s server is not running at the end")
    LINE_RSS[$s]="dead"
    LINE_FD[$s]="dead"
    LINE_ERR[$s]="dead"
    continue
  fi
  ref=${RSS_REF[$s]:-${RSS_END[$s]:-0}}
  end=${RSS_END[$s]:-0}
  growth=$(awk -v r="$ref" -v e="$end" 'BEGIN { printf "%+.1f", r ? (e - r) * 100 / r : 0 }')
  ok=$(awk -v g="$growth" -v t="$RSS_GROWTH" 'BEGIN { print (g <= t) ? 1 : 0 }')
  ((ok)) || FAILURES+=("$s: RSS grew ${growth} % between ${ref_at} s and the end of the load")
  LINE_RSS[$s]="$(mib "$ref") -> $(mib "$end") ($growth%) $(verdict "$ok")"
  fd_end=$(fd_count "${PID[$s]}")
  open=$(field "${STATS[$s]}" library_active)
  ok=$(((fd_end == FD0[$s] && open == 0) ? 1 : 0))
  ((ok)) || FAILURES+=("$s: ${fd_end} descriptors at the end, ${FD0[$s]} before; ${open} connections still open")
  LINE_FD[$s]="${FD0[$s]} -> $fd_end, $open open $(verdict "$ok")"
  errors=$(($(field "${STATS[$s]}" unexpected) + $(field "$LOG_DIR/load.stats" unexpected "$s")))
  ok=$((errors == 0 ? 1 : 0))
  ((ok)) || FAILURES+=("$s: $errors unexpected errors (see $LOG_DIR/$s.log and $LOG_DIR/load.log)")
  LINE_ERR[$s]="$errors $(verdict "$ok")"
done
client_loop=$(field "$LOG_DIR/load.stats" unexpected client)
((client_loop == 0)) || FAILURES+=("the load generator's loop reported $client_loop unexpected errors")
printf '%-36s %18s %18s   %s\n' "RSS MiB at ${ref_at} s -> end of load" "${LINE_RSS[plain]}" "${LINE_RSS[tls]}" \
  "growth <= ${RSS_GROWTH}%"
printf '%-36s %18s %18s   %s\n' "descriptors before -> idle at end" "${LINE_FD[plain]}" "${LINE_FD[tls]}" "back to baseline"
printf '%-36s %18s %18s   %s\n' "unexpected errors" "${LINE_ERR[plain]}" "${LINE_ERR[tls]}" "0"
for s in "${NAMES[@]}"; do
  kill -0 "${PID[$s]}" 2>/dev/null || continue
  echo "$s: peak RSS (VmHWM) $(mib "$(hwm_kib "${PID[$s]}")") MiB, idle RSS $(mib "$(rss_kib "${PID[$s]}")") MiB;" \
    "caused on purpose: $(field "${STATS[$s]}" resets) resets, $(field "${STATS[$s]}" overlong) over-long lines;" \
    "drain() waited $(field "${STATS[$s]}" drain_waits) times; malloc'd heap in use $(mib $((HEAP0[$s] / 1024))) MiB" \
    "before the load, $(mib $(($(field "${STATS[$s]}" heap) / 1024))) MiB idle after it"
done
echo "load generator's own loop: $client_loop unexpected"
if ((${#FAILURES[@]})); then
  echo
  printf 'FAIL: %s\n' "${FAILURES[@]}"
  for f in "$LOG_DIR"/plain.log "$LOG_DIR"/tls.log "$LOG_DIR"/load.log; do
    grep -m 20 unexpected "$f" || true
  done
  exit 1
fi
echo
echo "PASS"
