// SPDX-License-Identifier: MIT
// Timeouts (Python docs, "Timeouts"):
//
//   async def main():
//       try:
//           async with asyncio.timeout(1):
//               await long_running_task()
//       except TimeoutError:
//           print("The long operation timed out, but we've handled it.")
//       print("This statement will run regardless.")
//
//   async def eternity():
//       await asyncio.sleep(3600)
//       print('yay!')
//   try:
//       await asyncio.wait_for(eternity(), timeout=1.0)
//   except TimeoutError:
//       print('timeout!')
#include <asyncio/asyncio.hpp>
#include <cstdio>

asyncio::Coro<void> long_running_task() { co_await asyncio::sleep(3600); }

asyncio::Coro<void> eternity() {
  co_await asyncio::sleep(3600);
  std::puts("yay!");
}

asyncio::Coro<void> main_coro() {
  try {
    co_await asyncio::timeout(1, [&]() -> asyncio::Coro<void> { co_await long_running_task(); });
  } catch (const asyncio::TimeoutError&) {
    std::puts("The long operation timed out, but we've handled it.");
  }
  std::puts("This statement will run regardless.");

  try {
    co_await asyncio::wait_for(eternity(), 1.0);
  } catch (const asyncio::TimeoutError&) {
    std::puts("timeout!");
  }
}

int main() { asyncio::run(main_coro()); }
