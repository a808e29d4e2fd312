#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the process benchmark's RESULT lines (bench/run_process.sh logs) into a Markdown table.

Each peer's log holds one RESULT line per metric per round; the table shows the best round
(highest rate, lowest CPU time) and every ratio reads the same way: > 1 means ours is better
(ours / peer for rates, peer / ours for CPU time per process). Below it, every round's figure,
so the noise of the run can be read off.

Usage: python3 bench/process_table.py --logs build/bench-process [--quick]
Standard library only: it runs under Debian's /usr/bin/python3 without pip.
"""

import argparse
import datetime
import os
import platform

OURS = "ours"
# Ours again with SIGPIPE ignored, as the Python peers run (pipe workload only): one more row.
OURS_IGNORED = ("ours_noSIGPIPE", "ours, SIGPIPE ignored")
# (log name, column title); ratios compare ours against each of these.
PEERS = [("c", "C floor"), ("asyncio", "asyncio"), ("uvloop", "uvloop")]

# (workload, metric, unit, higher_is_better, targets {peer: minimum ratio}).
METRICS = [
    ("spawn", "procs_per_s", "processes/s", True, {"c": 0.8, "asyncio": 3.0}),
    ("spawn", "cpu_us_per_proc", "parent CPU µs/process", False, {}),
    ("pipe", "mb_per_s", "MB/s", True, {"c": 0.8, "asyncio": 2.0}),
    ("pipe", "mb_per_cpu_s", "MB per parent CPU-s", True, {}),
]


def read_log(path):
    """{(workload, metric): [value per round]}"""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "RESULT":
                out.setdefault((parts[1], parts[2]), []).append(float(parts[3]))
    return out


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def best(values, higher):
    if not values:
        return None
    return max(values) if higher else min(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    names = [OURS] + [p for p, _ in PEERS]
    logs = {n: read_log(os.path.join(args.logs, f"{n}.log")) for n in names}

    head = ["workload", "metric", "ours"] + [t for _, t in PEERS] + [f"vs {t}" for _, t in PEERS]
    print("| " + " | ".join(head) + " | target |")
    print("|" + "---|" * 2 + "---:|" * (1 + 2 * len(PEERS)) + "---|")
    ignored = read_log(os.path.join(args.logs, f"{OURS_IGNORED[0]}.log"))
    rows = []
    for workload, metric, unit, higher, targets in METRICS:
        rows.append((workload, unit, logs[OURS], workload, metric, higher, targets))
        if (workload, metric) in ignored:
            rows.append((workload, f"{unit} ({OURS_IGNORED[1]})", ignored, workload, metric, higher, targets))
    for row_name, unit, ours_log, workload, metric, higher, targets in rows:
        vals = {n: best(logs[n].get((workload, metric), []), higher) for n in names}
        ours = best(ours_log.get((workload, metric), []), higher)
        cells = [row_name, unit, fmt(ours)] + [fmt(vals[p]) for p, _ in PEERS]
        verdicts = []
        for p, title in PEERS:
            peer = vals[p]
            if ours is None or peer is None or ours == 0 or peer == 0:
                cells.append("n/a")
                continue
            ratio = ours / peer if higher else peer / ours
            cells.append(f"{ratio:.2f}×")
            if p in targets:
                ok = "met" if ratio >= targets[p] else "MISSED"
                verdicts.append(f"≥ {targets[p]:g}× {title}: {ok}")
        print("| " + " | ".join(cells) + " | " + ("; ".join(verdicts) or "") + " |")

    print()
    print("Every round (the table takes the best):")
    print()
    for workload, metric, unit, higher, _ in METRICS:
        rounds = []
        for n in names:
            vs = logs[n].get((workload, metric), [])
            title = "ours" if n == OURS else dict(PEERS)[n]
            rounds.append(f"{title} " + ", ".join(fmt(v) for v in vs))
        if (workload, metric) in ignored:
            rounds.insert(1, f"{OURS_IGNORED[1]} " + ", ".join(fmt(v) for v in ignored[(workload, metric)]))
        print(f"- {workload}, {unit}: " + "; ".join(rounds))

    print()
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{stamp}; {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
          f"Python {platform.python_version()}; load average at the end {' '.join(load)}"
          + ("; --quick: the numbers mean little" if args.quick else ""))


if __name__ == "__main__":
    main()
