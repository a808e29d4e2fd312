#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python asyncio / uvloop peer for the synchronization benchmark (bench/run_sync.sh).

The three workloads of bench/sync_bench.cpp with asyncio's public API only, printing one
`RESULT <workload> <metric> <value>` line per metric:

  queue      two tasks pass 1,000,000 items back and forth through two Queue(maxsize=1)
             (ns per item, one round trip each)
  lock       1,000 tasks each do `async with lock: counter += 1; await asyncio.sleep(0)`,
             1,000,000 acquisitions in total (ns per acquisition)
  to_thread  100,000 sequential `await asyncio.to_thread(trivial, i)` (calls per second)

Usage: /usr/bin/python3 bench/peers/sync_asyncio.py [--uvloop] [--quick] [--only w1,w2]
"""

import argparse
import asyncio
import sys
import time

WORKLOADS = ("queue", "lock", "to_thread")
QUEUE_ITEMS = 1_000_000
LOCK_TASKS = 1000
LOCK_ACQUISITIONS = 1_000_000
TO_THREAD_CALLS = 100_000


def report(workload, metric, value):
    print(f"RESULT {workload} {metric} {value:.6g}", flush=True)


async def pinger(ping, pong, n):
    total = 0
    for i in range(n):
        await ping.put(i)
        total += await pong.get()
    assert total == n * (n - 1) // 2


async def ponger(ping, pong, n):
    for _ in range(n):
        await pong.put(await ping.get())


async def bench_queue(n):
    ping, pong = asyncio.Queue(1), asyncio.Queue(1)
    start = time.perf_counter()
    back = asyncio.create_task(ponger(ping, pong, n))
    await pinger(ping, pong, n)
    await back
    report("queue", "ns_per_item", (time.perf_counter() - start) * 1e9 / n)


class Counter:
    value = 0


async def contender(lock, rounds, counter):
    for _ in range(rounds):
        async with lock:
            counter.value += 1
            await asyncio.sleep(0)  # hold it across a yield, so that everybody else queues


async def bench_lock(total):
    lock = asyncio.Lock()
    counter = Counter()
    rounds = total // LOCK_TASKS
    start = time.perf_counter()
    tasks = [asyncio.create_task(contender(lock, rounds, counter)) for _ in range(LOCK_TASKS)]
    for t in tasks:
        await t
    elapsed = time.perf_counter() - start
    assert counter.value == rounds * LOCK_TASKS
    report("lock", "ns_per_acquire", elapsed * 1e9 / counter.value)


def trivial(i):
    return i + 1


async def bench_to_thread(n):
    await asyncio.to_thread(trivial, 0)  # start the default pool outside the timing
    total = 0
    start = time.perf_counter()
    for i in range(n):
        total += await asyncio.to_thread(trivial, i)
    elapsed = time.perf_counter() - start
    assert total == n * (n + 1) // 2
    report("to_thread", "calls_per_s", n / elapsed)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--quick", action="store_true", help="divide all counts by 100")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="comma-separated subset of: " + ", ".join(WORKLOADS))
    args = parser.parse_args(argv)
    args.only = args.only.split(",")
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error("unknown workload(s): " + ", ".join(sorted(unknown)))
    return args


async def run_all(args):
    div = 100 if args.quick else 1
    if "queue" in args.only:
        await bench_queue(QUEUE_ITEMS // div)
    if "lock" in args.only:
        await bench_lock(LOCK_ACQUISITIONS // div)
    if "to_thread" in args.only:
        await bench_to_thread(TO_THREAD_CALLS // div)


def main(argv):
    args = parse_args(argv)
    factory = None
    if args.uvloop:
        import uvloop  # imported late: plain asyncio runs must not need it
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run_all(args))


if __name__ == "__main__":
    main(sys.argv[1:])
