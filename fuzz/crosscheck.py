#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Replays stream_reader_fuzz scenarios on CPython's own asyncio.StreamReader.

    STREAM_READER_FUZZ_JSON=1 build/fuzz/fuzz/stream_reader_fuzz -runs=0 build/fuzz/corpus 2>/dev/null \
        | fuzz/crosscheck.py

Each JSON line holds a scenario (limit, producer steps, consumer operations) and the outcomes the
C++ StreamReader gave (which the fuzzer has already found equal to its reference model). This runs
the same two tasks on a real Python loop and compares: it checks that the fuzzer's model and its
one scheduling rule describe CPython. Differences that are the port's documented choices are
ignored: readline() raises ValueError in Python (LimitOverrunError, a ValueError, here), so
`consumed` is not compared for readline.
"""
import asyncio
import json
import sys


class InjectedError(Exception):
    pass


def unhex(s):
    return bytes.fromhex(s)


async def scenario(sc):
    reader = asyncio.StreamReader(limit=sc["limit"])
    steps_done = 0
    outcomes = []

    async def consumer():
        for op in sc["ops"]:
            kind = op["op"]
            if kind == "yield":
                for _ in range(op["yields"]):
                    await asyncio.sleep(0)
                continue
            o = {"kind": "value", "data": b"", "expected": None, "consumed": 0, "what": ""}
            try:
                if kind == "readline":
                    o["data"] = await reader.readline()
                elif kind == "readuntil":
                    o["data"] = await reader.readuntil(unhex(op["sep"]))
                elif kind == "readexactly":
                    o["data"] = await reader.readexactly(op["n"])
                else:  # read, readall
                    o["data"] = await reader.read(op["n"])
            except asyncio.IncompleteReadError as e:
                o.update(kind="incomplete", data=e.partial, expected=e.expected)
            except asyncio.LimitOverrunError as e:
                o.update(kind="overrun", consumed=e.consumed, what=e.args[0])
            except InjectedError:
                o["kind"] = "injected"
            except ValueError as e:  # readline's LimitOverrunError
                o.update(kind="overrun", consumed=None, what=e.args[0])
            o.update(buffered=len(reader._buffer), at_eof=reader.at_eof(), steps=steps_done)
            outcomes.append(o)

    async def producer():
        nonlocal steps_done
        for st in sc["steps"]:
            for c in st["chunks"]:
                reader.feed_data(unhex(c))
            if st["eof"]:
                reader.feed_eof()
            if st["error"]:
                reader.set_exception(InjectedError())
            steps_done += 1
            await asyncio.sleep(0)

    c = asyncio.create_task(consumer())  # created first, as in the fuzzer
    p = asyncio.create_task(producer())
    await asyncio.wait_for(asyncio.gather(c, p), 10)
    return outcomes


def main():
    n = bad = 0
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        sc = json.loads(line)
        n += 1
        got = asyncio.run(scenario(sc))
        want = sc["outcomes"]
        for i, (g, w) in enumerate(zip(got, want)):
            w = dict(w, data=unhex(w["data"]), what=unhex(w["what"]).decode())
            if g["consumed"] is None:
                w["consumed"] = None
            if g != w:
                print(f"scenario {n}: outcome {i} differs\n  python: {g}\n  c++:    {w}\n  {line}")
                bad += 1
                break
        else:
            if len(got) != len(want):
                print(f"scenario {n}: {len(got)} outcomes in Python, {len(want)} in C++\n  {line}")
                bad += 1
    print(f"crosscheck: {n} scenarios, {bad} differing")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
