#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python asyncio echo server for bench/run_server.sh, in two modes:

  echo_asyncio.py [--uvloop] streams   [host] [port]   start_server + read + write + drain
  echo_asyncio.py [--uvloop] protocols [host] [port]   Protocol: data_received -> transport.write

Run with Debian's /usr/bin/python3 (python3-uvloop is installed for it).
"""

import asyncio
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(mode, host, port):
    if mode == "streams":
        server = await asyncio.start_server(handle, host, port, backlog=1024)
    else:
        server = await asyncio.get_running_loop().create_server(Echo, host, port, backlog=1024)
    print(f"Serving ({mode}) on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    use_uvloop = "--uvloop" in args
    args = [a for a in args if a != "--uvloop"]
    if not args or args[0] not in ("streams", "protocols"):
        sys.exit(__doc__)
    mode = args[0]
    host = args[1] if len(args) > 1 else "127.0.0.1"
    port = int(args[2]) if len(args) > 2 else 8888
    if use_uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(mode, host, port))
