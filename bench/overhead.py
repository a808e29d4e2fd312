#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Overhead of the diagnostics on the core benchmarks: runs core_bench binaries in
turn, one workload per process, several rounds, and prints the median of each metric.

    bench/overhead.py --rounds 9 \\
        before=/tmp/base/build/bench/core_bench \\
        after=build/bench/bench/core_bench \\
        "traced=ASYNCIO_TRACE=/dev/null build/bench/bench/core_bench"

Each variant is NAME=[ENV=VALUE ...] BINARY. Variants alternate inside each round, so a noisy
machine disturbs them alike. Prints a Markdown table: the median per variant, and each variant
against the first (for throughputs higher is better, for times lower is better).
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys

HIGHER_IS_BETTER = {"tasks_per_s"}


def parse_variant(text):
    name, _, command = text.partition("=")
    words = shlex.split(command)
    env = dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("/") and not words[0].startswith("."):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if not name or not words:
        sys.exit(f"overhead.py: bad variant {text!r}")
    return name, words, env


def run(words, env, workload):
    out = subprocess.run(words + ["--only", workload], env=env, capture_output=True, text=True, check=True).stdout
    results = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "RESULT":
            results[(parts[1], parts[2])] = float(parts[3])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workloads", default="spawn,pingpong,yield,timers")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    samples = {}
    for r in range(args.rounds):
        for workload in args.workloads.split(","):
            for name, words, env in variants:
                for key, value in run(words, env, workload).items():
                    samples.setdefault((name, key), []).append(value)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    metrics = sorted({key for (_, key) in samples}, key=lambda k: args.workloads.split(",").index(k[0]))
    names = [v[0] for v in variants]
    header = "| workload | metric | " + " | ".join(names) + " | " + " | ".join(f"{n} vs {names[0]}" for n in names[1:]) + " |"
    print(header)
    print("|" + "---|" * (2 + len(names) + len(names) - 1))
    for key in metrics:
        med = [statistics.median(samples[(n, key)]) for n in names]
        cells = [f"{m:,.4g}" for m in med]
        ratios = []
        for m in med[1:]:
            change = (m / med[0] - 1) * 100
            worse = -change if key[1] in HIGHER_IS_BETTER else change
            ratios.append(f"{change:+.1f}% ({'slower' if worse > 0 else 'faster'})")
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
