#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the peers' RESULT lines (bench/run_core.sh logs) into one Markdown table of ratios.

Every ratio reads the same way: > 1 means ours is better. For rates (higher is better) it is
ours / peer; for times and bytes (lower is better) it is peer / ours.

Usage: python3 bench/core_table.py --logs build/bench-core [--quick]
Standard library only: it runs under Debian's /usr/bin/python3 without pip.
"""

import argparse
import datetime
import os
import platform
import re
import subprocess

# (log name, column title), ours first; its column is what every ratio compares against.
OURS = "ours"
PEERS = [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("asio", "Boost.Asio")]

# (workload, metric, unit, higher_is_better), in table order.
METRICS = [
    ("spawn", "tasks_per_s", "tasks/s", True),
    ("pingpong", "ns_per_switch", "ns/switch", False),
    ("yield", "ns_per_yield", "ns/yield", False),
    ("timers", "wall_s", "s wall", False),
    ("timers", "wall_s_rerun", "s wall, rerun", False),
    ("timers", "bytes_per_task", "bytes/task", False),
]

RESULT_LINE = re.compile(r"^RESULT (\S+) (\S+) (\S+)$")


def read_results(path):
    """{(workload, metric): value} from one peer's log; empty if the peer did not run."""
    results = {}
    if not os.path.exists(path):
        return results
    with open(path) as log:
        for line in log:
            match = RESULT_LINE.match(line.strip())
            if match:
                results[(match[1], match[2])] = float(match[3])
    return results


def fmt_value(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1e5:
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= scale:
                return f"{v / scale:.3g}{suffix}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def ratio(ours, peer, higher_is_better):
    if ours is None or peer is None or ours == 0 or peer == 0:
        return "n/a"
    r = ours / peer if higher_is_better else peer / ours
    return f"{r:.2f}x"


# ---- machine description -----------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def boost_version():
    try:
        with open("/usr/include/boost/version.hpp") as header:
            match = re.search(r'#define BOOST_LIB_VERSION "([^"]+)"', header.read())
            return match[1].replace("_", ".") if match else "?"
    except OSError:
        return "not installed"


def uvloop_version():
    try:
        import uvloop
        return uvloop.__version__
    except ImportError:
        return "not installed"


def gxx_version():
    try:
        out = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def machine_line():
    return (f"{cpu_model()}, {os.cpu_count()} cores, Linux {platform.release()}; "
            f"Python {platform.python_version()}, uvloop {uvloop_version()}, "
            f"Boost {boost_version()}, g++ {gxx_version()}")


# ---- table -------------------------------------------------------------------------------------

def table_lines(results):
    ours = results[OURS]
    header = (["workload", "metric", "better", "ours"] + [title for _, title in PEERS] +
              [f"ours vs {title}" for _, title in PEERS])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|"]
    for workload, metric, unit, higher in METRICS:
        key = (workload, metric)
        peer_values = [results[name].get(key) for name, _ in PEERS]
        row = [workload, unit, "higher" if higher else "lower", fmt_value(ours.get(key))]
        row += [fmt_value(v) for v in peer_values]
        row += [ratio(ours.get(key), v, higher) for v in peer_values]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", required=True, help="directory with <peer>.log files")
    parser.add_argument("--quick", action="store_true", help="mark the table as a smoke run")
    args = parser.parse_args()

    names = [OURS] + [name for name, _ in PEERS]
    results = {name: read_results(os.path.join(args.logs, f"{name}.log")) for name in names}

    print("# Core benchmark: asyncio for C++ vs asyncio, uvloop, Boost.Asio")
    print()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(f"{when}; {machine_line()}.")
    if args.quick:
        print("**--quick run: counts divided by 100, numbers are only a smoke test.**")
    print()
    print("Ratios: > 1 means ours is better (ours/peer for rates, peer/ours for times and bytes). "
          "n/a: that peer did not produce the number (see its log in build/bench-core/).")
    print()
    for line in table_lines(results):
        print(line)


if __name__ == "__main__":
    main()
