// SPDX-License-Identifier: MIT
// Python:
//   async def main():
//       print('Hello ...')
//       await asyncio.sleep(1)
//       print('... World!')
//   asyncio.run(main())
#include <asyncio/asyncio.hpp>
#include <cstdio>

asyncio::Coro<void> main_coro() {
  std::puts("Hello ...");
  co_await asyncio::sleep(1);
  std::puts("... World!");
}

int main() { asyncio::run(main_coro()); }
