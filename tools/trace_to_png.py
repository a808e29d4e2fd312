#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Renders asyncio-for-C++ timeline traces (ASYNCIO_TRACE=path.json, asyncio::start_trace) to a PNG.

    tools/trace_to_png.py trace.json -o timeline.png
    tools/trace_to_png.py blocking.json async.json -o both.png --titles "blocking sleep" "loop sleep"

Several traces are drawn side by side, each with its own time axis. One row per track: the event
loop first (its iterations, the task steps inside them, and "poll" while it waits), then one row
per task (solid: running a step; light: waiting, labelled with what it waits on).

Needs Python 3 and matplotlib (Debian: python3-matplotlib; scripts/install-deps.sh --docs).
Use Debian's /usr/bin/python3 when another python3 comes first on PATH.
"""
import argparse
import json
import sys

WAIT_COLOURS = {
    "sleep": "#c6dbef",
    "task": "#fdd0a2",
    "gather": "#fdd0a2",
    "future": "#fff2ae",
    "io": "#c7e9c0",
    "lock": "#dadaeb",
    "semaphore": "#dadaeb",
    "condition": "#dadaeb",
    "event": "#dadaeb",
    "queue": "#fcbba1",
    "thread": "#d9d9d9",
}
RUN_COLOUR = "#08519c"
LOOP_STEP_COLOUR = "#3182bd"
POLL_COLOUR = "#eeeeee"


def load(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    names, order = {}, {}
    for e in events:
        if e.get("ph") != "M":
            continue
        if e["name"] == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif e["name"] == "thread_sort_index":
            order[e["tid"]] = e["args"]["sort_index"]
    slices = [e for e in events if e.get("ph") == "X"]
    tids = sorted({e["tid"] for e in slices} | set(names), key=lambda t: (order.get(t, t), t))
    return names, tids, slices


def trace_end(path):
    slices = load(path)[2]
    return max((e["ts"] + e.get("dur", 0) for e in slices), default=0) / 1e6


def draw(ax, path, title, t_end):
    names, tids, slices = load(path)
    if not slices:
        ax.set_title(f"{title}\n(empty trace)")
        return
    t_start = min(e["ts"] for e in slices) / 1e6
    span = max(t_end - t_start, 1e-6)
    min_width = span * 0.004  # keep microsecond steps visible
    row = {tid: i for i, tid in enumerate(tids)}
    for e in slices:
        y = row[e["tid"]]
        x = e["ts"] / 1e6
        w = e.get("dur", 0) / 1e6
        cat = e.get("cat", "")
        name = e.get("name", "")
        if cat == "step" and name == "run":
            ax.broken_barh([(x, max(w, min_width))], (y - 0.35, 0.7), facecolors=RUN_COLOUR)
        elif cat == "step":  # a step on the event loop's row
            ax.broken_barh([(x, max(w, min_width))], (y - 0.25, 0.5), facecolors=LOOP_STEP_COLOUR)
            if w > span * 0.08:
                ax.text(x + w / 2, y, name, ha="center", va="center", fontsize=7, color="white")
        elif cat == "wait":
            kind = e.get("args", {}).get("kind", "")
            ax.broken_barh([(x, w)], (y - 0.3, 0.6), facecolors=WAIT_COLOURS.get(kind, "#f0f0f0"),
                           edgecolors="#999999", linewidth=0.5)
            if w > span * 0.08:
                ax.text(x + w / 2, y, name, ha="center", va="center", fontsize=7, color="#333333")
        elif cat == "loop" and name == "poll":
            ax.broken_barh([(x, w)], (y - 0.3, 0.6), facecolors=POLL_COLOUR, edgecolors="#bbbbbb",
                           linewidth=0.5)
            if w > span * 0.08:
                ax.text(x + w / 2, y, "poll (thread asleep)", ha="center", va="center", fontsize=7,
                        color="#555555")
        elif cat == "loop" and name == "iteration":
            ax.broken_barh([(x, max(w, min_width))], (y - 0.4, 0.8), facecolors="none",
                           edgecolors="#636363", linewidth=0.8)
        elif cat == "callback":
            ax.broken_barh([(x, max(w, min_width))], (y - 0.2, 0.4), facecolors="#969696")
    ax.set_yticks(range(len(tids)))
    ax.set_yticklabels([names.get(t, str(t)) for t in tids], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(t_end, 1e-6) * 1.02)
    ax.set_xlabel("seconds since the trace started")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    ax.set_title(title, fontsize=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", help="trace-event JSON files")
    parser.add_argument("-o", "--output", required=True, help="the PNG to write")
    parser.add_argument("--titles", nargs="+", help="one title per trace (default: the file names)")
    parser.add_argument("--width", type=float, default=6.5, help="inches per trace (default 6.5)")
    parser.add_argument("--own-scale", action="store_true",
                        help="give each trace its own time axis (default: one scale for all)")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("trace_to_png.py: matplotlib is missing (Debian: apt-get install python3-matplotlib, "
                 "or scripts/install-deps.sh --docs; run it with /usr/bin/python3)")
    titles = args.titles or args.traces
    if len(titles) != len(args.traces):
        sys.exit("trace_to_png.py: give one title per trace")
    rows = max(len(load(p)[1]) for p in args.traces)
    fig, axes = plt.subplots(1, len(args.traces), figsize=(args.width * len(args.traces), 0.5 * rows + 2.0),
                             squeeze=False)
    common_end = max(trace_end(p) for p in args.traces)
    for ax, path, title in zip(axes[0], args.traces, titles):
        draw(ax, path, title, trace_end(path) if args.own_scale else common_end)
    from matplotlib.patches import Patch
    legend = [Patch(facecolor=RUN_COLOUR, label="task runs a step (holds the loop)"),
              Patch(facecolor=WAIT_COLOURS["sleep"], edgecolor="#999999", label="waits: sleep"),
              Patch(facecolor=WAIT_COLOURS["task"], edgecolor="#999999", label="waits: task / gather"),
              Patch(facecolor=WAIT_COLOURS["future"], edgecolor="#999999", label="waits: future"),
              Patch(facecolor=WAIT_COLOURS["io"], edgecolor="#999999", label="waits: I/O"),
              Patch(facecolor=POLL_COLOUR, edgecolor="#bbbbbb", label="loop polls (thread asleep)")]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(args.output, dpi=120)


if __name__ == "__main__":
    main()
