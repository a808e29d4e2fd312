// SPDX-License-Identifier: MIT
// The seed's second program: the same tasks with the loop's *non-blocking* sleep. While one task
// sleeps the loop runs the other, so they interleave (A2 B2 A3 B3 B4). Total ≈ 3 s.
//
//   async def custom_sleep():
//       print('SLEEP {}\n'.format(datetime.now()))
//       await asyncio.sleep(1)
//
//   (factorial and the main block are the same as in seed_blocking_sleep.cpp)
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "seed_clock.hpp"

asyncio::Coro<void> custom_sleep() {
  std::printf("SLEEP %s\n\n", seed::datetime_now().c_str());
  co_await asyncio::sleep(1);
}

asyncio::Coro<void> factorial(std::string name, int number) {
  long f = 1;
  for (int i = 2; i <= number; ++i) {
    std::printf("Task %s: Compute factorial(%d)\n", name.c_str(), i);
    co_await custom_sleep();
    f *= i;
  }
  std::printf("Task %s: factorial(%d) is %ld\n\n", name.c_str(), number, f);
}

int main() {
  double start = seed::time_now();
  auto& loop = asyncio::get_event_loop();
  std::vector tasks = {
      asyncio::ensure_future(factorial("A", 3)),
      asyncio::ensure_future(factorial("B", 4)),
  };
  loop.run_until_complete(asyncio::wait(tasks));
  loop.close();
  double end = seed::time_now();
  std::printf("Total time: %f\n", end - start);
}
