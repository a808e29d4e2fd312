#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python asyncio / uvloop peer of the process benchmark (bench/run_process.sh).

The two workloads as a Python programmer writes them with asyncio's public API:

  spawn N      N runs of /bin/true, 50 at a time: 50 tasks each loop on
               `await (await create_subprocess_exec("/bin/true")).wait()`
               until N processes have been started
  pipe BYTES   BYTES through `cat` (stdin and stdout pipes): one task writes 64 KiB
               chunks with write() + drain(), another reads with read(65536)

Prints `RESULT spawn procs_per_s X` / `RESULT pipe mb_per_s X` (MB = 10^6 bytes), and this
process's CPU time, all threads (children not counted): `RESULT spawn cpu_us_per_proc X` /
`RESULT pipe mb_per_cpu_s X`.

Usage: /usr/bin/python3 bench/peers/process_asyncio.py [--uvloop] spawn N | pipe BYTES
--uvloop needs Debian's python3-uvloop, which is installed for /usr/bin/python3.
"""

import argparse
import asyncio
import time

CONCURRENCY = 50
CHUNK = 64 * 1024


def report(workload, metric, value):
    print(f"RESULT {workload} {metric} {value:.6g}", flush=True)


async def bench_spawn(n):
    started = 0

    async def worker():
        nonlocal started
        while started < n:
            started += 1
            proc = await asyncio.create_subprocess_exec("/bin/true")
            if await proc.wait() != 0:
                raise RuntimeError("/bin/true failed")

    start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    report("spawn", "procs_per_s", n / (time.perf_counter() - start))
    report("spawn", "cpu_us_per_proc", (time.process_time() - cpu_start) * 1e6 / n)


async def bench_pipe(total):
    start, cpu_start = time.perf_counter(), time.process_time()
    proc = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    chunk = b"x" * CHUNK

    async def writer():
        left = total
        while left > 0:
            piece = chunk if left >= CHUNK else chunk[:left]
            proc.stdin.write(piece)
            await proc.stdin.drain()
            left -= len(piece)
        proc.stdin.close()
        await proc.stdin.wait_closed()

    async def reader():
        received = 0
        while True:
            data = await proc.stdout.read(CHUNK)
            if not data:
                return received
            received += len(data)

    _, received = await asyncio.gather(writer(), reader())
    if await proc.wait() != 0 or received != total:
        raise RuntimeError("cat lost data or failed")
    report("pipe", "mb_per_s", total / 1e6 / (time.perf_counter() - start))
    report("pipe", "mb_per_cpu_s", total / 1e6 / (time.process_time() - cpu_start))


def loop_factory(use_uvloop):
    if not use_uvloop:
        return None
    import uvloop  # imported late: plain asyncio runs must not need it
    return uvloop.new_event_loop


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true",
                        help="run on uvloop instead of asyncio's default loop")
    parser.add_argument("workload", choices=("spawn", "pipe"))
    parser.add_argument("count", type=int, help="processes (spawn) or bytes (pipe)")
    args = parser.parse_args()
    bench = bench_spawn if args.workload == "spawn" else bench_pipe
    with asyncio.Runner(loop_factory=loop_factory(args.uvloop)) as runner:
        runner.run(bench(args.count))


if __name__ == "__main__":
    main()
