#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tables and bar chart of the network server benchmark (bench/run_server.sh).

Reads the RESULT lines the script collected (one per server, scenario and round), prints
Markdown tables (also written to --table) and draws a PNG bar chart (--chart) with matplotlib.

Usage: /usr/bin/python3 bench/server_chart.py --results build/bench-server-logs/results.txt \
           [--table build/bench-server.md] [--chart docs/img/server_bench.png] [--quick]

Ratios read the same way everywhere: > 1 means ours is better. The main figure is requests per
second of server CPU time: on two cores the load generator saturates its own core, so requests/s
mostly measure the load generator, while CPU time spent per request measures the server.
The tables need only the standard library; the chart needs python3-matplotlib.
"""

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys

# (name, title) in table order; ours first.
ECHO_SERVERS = [
    ("ours_protocol", "**ours: protocols**"),
    ("ours_streams", "**ours: streams**"),
    ("c_epoll", "C epoll (floor)"),
    ("c_uring", "C io_uring (completion-based)"),
    ("c_uring_multishot", "C io_uring, multishot recv"),
    ("libuv", "libuv"),
    ("asio", "Boost.Asio"),
    ("asyncio_protocols", "asyncio protocols"),
    ("asyncio_streams", "asyncio streams"),
    ("uvloop_protocols", "uvloop protocols"),
    ("uvloop_streams", "uvloop streams"),
    ("node", "Node.js"),
]
HTTP_SERVERS = [
    ("ours_http", "**ours: http_hello_server** (protocols)"),
    ("c_epoll_http", "C epoll (floor)"),
    ("node_http", "Node.js http"),
]
SCENARIOS = [
    ("echo100", "Echo 100 B × 100 connections"),
    ("echo1k", "Echo 1 KiB × 100 connections"),
    ("echo16k", "Echo 16 KiB × 100 connections"),
    ("lat1k", "Echo 1 KiB × 1 connection (latency)"),
    ("http", "HTTP hello world, wrk -t1 -c100"),
]
SHORT = {"echo100": "echo 100 B\n×100", "echo1k": "echo 1 KiB\n×100", "echo16k": "echo 16 KiB\n×100",
         "lat1k": "echo 1 KiB\n×1", "http": "HTTP\nwrk -c100"}
# The chart colours HTTP servers like the echo server of the same family.
FAMILY = {"ours_http": "ours_protocol", "c_epoll_http": "c_epoll", "node_http": "node"}
CHART_TITLES = {
    "ours_protocol": "ours: protocols", "ours_streams": "ours: streams", "c_epoll": "C epoll (floor)",
    "c_uring": "C io_uring", "c_uring_multishot": "C io_uring multishot", "libuv": "libuv", "asio": "Boost.Asio", "asyncio_protocols": "asyncio protocols",
    "asyncio_streams": "asyncio streams", "uvloop_protocols": "uvloop protocols",
    "uvloop_streams": "uvloop streams", "node": "Node.js",
}
# (title, ours, peer, minimum ratio of requests per server CPU-second, on echo1k)
TARGETS = [
    ("protocols ≥ 0.95× the C epoll server", "ours_protocol", "c_epoll", 0.95),
    ("streams ≥ 0.9× the C epoll server", "ours_streams", "c_epoll", 0.9),
    ("streams ≥ 1.1× Boost.Asio", "ours_streams", "asio", 1.1),
    ("streams ≥ 1.0× libuv", "ours_streams", "libuv", 1.0),
    ("(implied) streams > 2× uvloop streams", "ours_streams", "uvloop_streams", 2.0),
    ("(implied) streams > 2.5× asyncio streams", "ours_streams", "asyncio_streams", 2.5),
]

LINE = re.compile(r"^RESULT (.*)$")


def read_results(path):
    """{(server, scenario): {metric: median over rounds, "rounds": count, "by_round": {round: values}}}."""
    runs = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if not m:
                continue
            fields = dict(kv.split("=", 1) for kv in m[1].split() if "=" in kv)
            key = (fields.pop("server"), fields.pop("scenario"))
            round_no = fields.pop("round", "1")
            values = {}
            for k, v in fields.items():
                try:
                    values[k] = float(v)
                except ValueError:
                    pass
            if values.get("server_cpu_s", 0) > 0:
                values["per_cpu_s"] = values["requests"] / values["server_cpu_s"]
                values["cpu_pct"] = 100 * values["server_cpu_s"] / values["seconds"]
            runs.setdefault(key, {})[round_no] = values
    medians = {}
    for key, by_round in runs.items():
        rounds = list(by_round.values())
        metrics = set().union(*rounds)
        medians[key] = {k: statistics.median(r[k] for r in rounds if k in r) for k in metrics}
        medians[key]["rounds"] = len(rounds)
        medians[key]["by_round"] = by_round
    return medians


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g}{suffix}"
    return f"{v:.{digits}g}" if abs(v) < 100 else f"{v:.0f}"


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


def paired_ratio(mine, peer, metric):
    """Median over the rounds of (ours ÷ peer) within each round: the servers of one round ran
    within a minute or two of each other, so pairing them cancels most of the machine's drift
    (on a shared machine, successive rounds differ by more than the servers do). With a single
    round, the plain ratio."""
    if not mine or not peer:
        return None
    rounds = sorted(set(mine["by_round"]) & set(peer["by_round"]))
    ratios = [ratio(mine["by_round"][r].get(metric), peer["by_round"][r].get(metric)) for r in rounds]
    ratios = [r for r in ratios if r is not None]
    if not ratios:
        return ratio(mine.get(metric), peer.get(metric))
    return statistics.median(ratios)


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}×"


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def machine_line():
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from core_table import machine_line as core_machine
        base = core_machine()
    except Exception:
        base = f"{os.cpu_count()} cores"
    libuv = version(["dpkg-query", "-W", "-f=${Version}", "libuv1-dev"]).split("-")[0]
    node = version(["node", "--version"])
    wrk = version(["dpkg-query", "-W", "-f=${Version}", "wrk"]).split("-")[0]
    return f"{base}, libuv {libuv}, Node.js {node}, wrk {wrk}"


def scenario_table(results, scenario, servers, ours):
    """One scenario: a row per server, ratio columns for each of ours."""
    head = ["server", "req/s", "req per server CPU-s", "server CPU", "p50 µs", "p99 µs", "peak RSS"]
    head += [f"{title} ÷ it" for _, title in ours]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, title in servers:
        r = results.get((name, scenario))
        if not r:
            continue
        row = [title, fmt(r.get("rps")), fmt(r.get("per_cpu_s")),
               f"{r['cpu_pct']:.0f}%" if "cpu_pct" in r else "n/a",
               fmt(r.get("p50_us")), fmt(r.get("p99_us")),
               f"{r['rss_kb'] / 1024:.1f} MiB" if "rss_kb" in r else "n/a"]
        for o, _ in ours:
            mine = results.get((o, scenario))
            if o == name or not mine:
                row.append("—")
                continue
            row.append(f"{fmt_ratio(paired_ratio(mine, r, 'per_cpu_s'))} "
                       f"({fmt_ratio(paired_ratio(mine, r, 'rps'))})")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def report(results, args):
    out = []
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rounds = max((r["rounds"] for r in results.values()), default=0)
    out.append("# Network servers: asyncio for C++ vs C epoll, libuv, Boost.Asio, asyncio, uvloop, Node.js")
    out.append("")
    out.append(f"{when}; {machine_line()}.")
    out.append(f"Server on CPU 1, load generator on CPU 0; {args.duration} s per scenario"
               + (f", median of {rounds} rounds" if rounds > 1 else "")
               + (f"; load average {args.load}" if args.load else "") + ".")
    if args.quick:
        out.append("")
        out.append("**--quick run: 1 s per scenario, the numbers are only a smoke test.**")
    out.append("")
    out.append("Ratio columns: ours ÷ that server in requests per server CPU-second, and in "
               "parentheses in requests/s; > 1 means ours is better."
               + (" With several rounds, each ratio is the median of the rounds' ratios (servers "
                  "paired within a round), the other columns the median of the rounds' values."
                  if rounds > 1 else ""))
    ours_echo = [("ours_protocol", "protocols"), ("ours_streams", "streams")]
    for scenario, title in SCENARIOS:
        if not any(s == scenario for _, s in results):
            continue
        out.append("")
        out.append(f"### {title}")
        out.append("")
        if scenario == "http":
            out += scenario_table(results, scenario, HTTP_SERVERS, [("ours_http", "ours")])
        else:
            out += scenario_table(results, scenario, ECHO_SERVERS, ours_echo)
    if any(s == "echo1k" for _, s in results):
        out.append("")
        out.append("### Targets (requests per server CPU-second, echo 1 KiB × 100)")
        out.append("")
        out.append("| target | measured | |")
        out.append("|---|---:|---|")
        for title, o, p, minimum in TARGETS:
            r = paired_ratio(results.get((o, "echo1k")), results.get((p, "echo1k")), "per_cpu_s")
            verdict = "n/a" if r is None else ("met" if r >= minimum else "**not met**")
            out.append(f"| {title} | {fmt_ratio(r)} | {verdict} |")
    return out


def chart(results, path, subtitle):
    """Small multiples: a column per scenario, a row per metric, a horizontal bar per server."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s for s, _ in SCENARIOS if any(sc == s for _, sc in results)]
    names = [n for n, _ in ECHO_SERVERS if any(sv == n or FAMILY.get(sv) == n for sv, _ in results)]
    colors = {"ours_protocol": "#1f5fbf", "ours_streams": "#5b9bf0", "c_epoll": "#444444", "c_uring": "#999999",
              "c_uring_multishot": "#bbbbbb",
              "libuv": "#8c6d31", "asio": "#d62728", "asyncio_protocols": "#2ca02c",
              "asyncio_streams": "#98df8a", "uvloop_protocols": "#9467bd", "uvloop_streams": "#c5b0d5",
              "node": "#ff7f0e"}
    metrics = [("per_cpu_s", "requests per server CPU-second"), ("rps", "requests per second")]
    fig, axes = plt.subplots(len(metrics), len(scenarios), figsize=(3.1 * len(scenarios) + 1.5, 8),
                             sharey=True, squeeze=False)
    ys = list(range(len(names)))[::-1]  # ours at the top
    for row, (metric, label) in enumerate(metrics):
        for col, scenario in enumerate(scenarios):
            ax = axes[row][col]
            values, bar_colors, positions = [], [], []
            for y, name in zip(ys, names):
                key = name
                if scenario == "http":
                    key = next((h for h, fam in FAMILY.items() if fam == name), None)
                r = results.get((key, scenario)) if key else None
                if r and r.get(metric):
                    values.append(r[metric] / 1e3)
                    bar_colors.append(colors.get(name))
                    positions.append(y)
            ax.barh(positions, values, color=bar_colors)
            for y, v in zip(positions, values):
                ax.text(v, y, f" {v:.3g}k", va="center", fontsize=7)
            if values:
                ax.set_xlim(0, max(values) * 1.3)
            ax.grid(axis="x", alpha=0.3)
            ax.set_axisbelow(True)
            ax.tick_params(axis="x", labelsize=7)
            ax.tick_params(axis="y", labelsize=8)
            if row == 0:
                ax.set_title(SHORT[scenario].replace("\n", " "), fontsize=10)
            if col == 0:
                ax.set_ylabel(label + " (thousands)", fontsize=9)
    axes[0][0].set_yticks(ys)
    axes[0][0].set_yticklabels([CHART_TITLES[n] for n in names], fontsize=8)
    fig.suptitle("Echo and HTTP servers, server on one core, load generator on the other "
                 "(higher is better; HTTP: ours = http_hello_server)\n" + subtitle, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--table", help="also write the Markdown here")
    parser.add_argument("--chart", help="PNG to write (needs python3-matplotlib)")
    parser.add_argument("--load", default="", help="load average to print")
    parser.add_argument("--duration", default="5", help="seconds per scenario, to print")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    results = read_results(args.results)
    lines = report(results, args)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    if args.chart:
        try:
            subtitle = datetime.date.today().isoformat() + (", --quick" if args.quick else "")
            chart(results, args.chart, subtitle)
        except ImportError:
            print(f"server_chart.py: no matplotlib, no chart ({args.chart})", file=sys.stderr)


if __name__ == "__main__":
    main()
