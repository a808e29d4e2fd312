#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python asyncio / uvloop peer for the core benchmark (bench/run_core.sh).

Runs the four core workloads with asyncio's public API only and prints one
`RESULT <workload> <metric> <value>` line per metric, the format shared by
every peer so run_core.sh can put them side by side.

Usage: /usr/bin/python3 bench/peers/core_asyncio.py [--uvloop] [--quick]
                                                    [--only w1,w2]
--uvloop needs Debian's python3-uvloop, which is installed for /usr/bin/python3.
"""

import argparse
import asyncio
import gc
import random
import sys
import time

WORKLOADS = ("spawn", "pingpong", "yield", "timers")

# Full-run sizes; --quick divides each by 100. SPAWN_BATCH stays fixed so the
# shape (create a batch, then await each) is the same in every run and peer.
SPAWN_BATCH = 1000
SPAWN_ROUNDS = 1000
PINGPONG_ROUND_TRIPS = 1_000_000
YIELDS = 1_000_000
TIMER_TASKS = 1_000_000
TIMER_SEED = 42


def report(workload, metric, value):
    print(f"RESULT {workload} {metric} {value:.6g}", flush=True)


# --- memory: VmHWM / VmRSS from /proc/self/status ----------------------------

def proc_status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def reset_peak_rss():
    """Make VmHWM forget the peaks of earlier workloads (Linux >= 4.0).

    Without it the timers peak could hide under an earlier one; if the kernel
    refuses, the baseline below is still the current RSS, which is close.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


# --- workloads ---------------------------------------------------------------

async def trivial(i):
    return i


async def bench_spawn(rounds):
    total = 0
    start = time.perf_counter()
    for _ in range(rounds):
        tasks = [asyncio.create_task(trivial(i)) for i in range(SPAWN_BATCH)]
        for task in tasks:
            total += await task
    elapsed = time.perf_counter() - start
    assert total == rounds * SPAWN_BATCH * (SPAWN_BATCH - 1) // 2
    report("spawn", "tasks_per_s", rounds * SPAWN_BATCH / elapsed)


class Mailbox:
    """Where each side of the ping-pong parks the one-shot future it waits on."""

    def __init__(self, loop):
        self.ping = loop.create_future()  # ponger waits on it; made up front
        self.pong = None                   # pinger waits on it


async def pinger(loop, box, n):
    for _ in range(n):
        # Park our future before waking the ponger, so its reply has a target.
        box.pong = loop.create_future()
        box.ping.set_result(None)
        await box.pong


async def ponger(loop, box, n):
    for _ in range(n):
        await box.ping
        box.ping = loop.create_future()
        box.pong.set_result(None)


async def bench_pingpong(n):
    loop = asyncio.get_running_loop()
    box = Mailbox(loop)
    start = time.perf_counter()
    pong_task = asyncio.create_task(ponger(loop, box, n))
    await asyncio.create_task(pinger(loop, box, n))
    await pong_task
    elapsed = time.perf_counter() - start
    # One round trip is two switches: pinger -> ponger -> pinger.
    report("pingpong", "ns_per_switch", elapsed * 1e9 / (2 * n))


async def bench_yield(n):
    start = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    report("yield", "ns_per_yield", elapsed * 1e9 / n)


async def bench_timers(n, rerun=False):
    """rerun: the second run in this process, on memory the first gave back (bench_common.hpp)."""
    rng = random.Random(TIMER_SEED)
    delays = [rng.random() for _ in range(n)]  # uniform in [0, 1) s
    gc.collect()
    reset_peak_rss()
    baseline_kib = proc_status_kib("VmRSS")
    start = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.sleep(d)) for d in delays]
    for task in tasks:
        await task
    elapsed = time.perf_counter() - start
    peak_kib = proc_status_kib("VmHWM")
    if rerun:
        report("timers", "wall_s_rerun", elapsed)
    else:
        report("timers", "wall_s", elapsed)
        report("timers", "bytes_per_task", (peak_kib - baseline_kib) * 1024 / n)


# --- driver ------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true",
                        help="run on uvloop instead of asyncio's default loop")
    parser.add_argument("--quick", action="store_true",
                        help="divide all counts by 100 (smoke test)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="comma-separated subset of: " + ", ".join(WORKLOADS))
    args = parser.parse_args(argv)
    args.only = args.only.split(",")
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error("unknown workload(s): " + ", ".join(sorted(unknown)))
    return args


async def bench_timers_twice(n):
    await bench_timers(n)
    await bench_timers(n, rerun=True)


async def run_all(args):
    div = 100 if args.quick else 1
    benches = {
        "spawn": lambda: bench_spawn(SPAWN_ROUNDS // div),
        "pingpong": lambda: bench_pingpong(PINGPONG_ROUND_TRIPS // div),
        "yield": lambda: bench_yield(YIELDS // div),
        "timers": lambda: bench_timers_twice(TIMER_TASKS // div),
    }
    for name in WORKLOADS:  # fixed order; timers last as it grows the heap most
        if name in args.only:
            await benches[name]()


def loop_factory(use_uvloop):
    if not use_uvloop:
        return None  # asyncio's default loop, as asyncio.run() would make
    import uvloop  # imported late: plain asyncio runs must not need it
    return uvloop.new_event_loop


def main(argv):
    args = parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory(args.uvloop)) as runner:
        runner.run(run_all(args))


if __name__ == "__main__":
    main(sys.argv[1:])
