// SPDX-License-Identifier: MIT
// The seed's first program: a *blocking* sleep inside a coroutine. time.sleep() holds the whole
// thread, so the loop cannot switch tasks: A runs to the end, then B. Total ≈ 5 s.
//
//   import asyncio, time
//   from datetime import datetime
//
//   async def custom_sleep():
//       print('SLEEP', datetime.now())
//       time.sleep(1)
//
//   async def factorial(name, number):
//       f = 1
//       for i in range(2, number+1):
//           print('Task {}: Compute factorial({})'.format(name, i))
//           await custom_sleep()
//           f *= i
//       print('Task {}: factorial({}) is {}\n'.format(name, number, f))
//
//   start = time.time()
//   loop = asyncio.get_event_loop()
//   tasks = [
//       asyncio.ensure_future(factorial("A", 3)),
//       asyncio.ensure_future(factorial("B", 4)),
//   ]
//   loop.run_until_complete(asyncio.wait(tasks))
//   loop.close()
//   end = time.time()
//   print("Total time: {}".format(end - start))
//
// Run it with ASYNCIO_DEBUG=1 and the loop names each step that blocked it.
#include <asyncio/asyncio.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "seed_clock.hpp"

asyncio::Coro<void> custom_sleep() {
  std::printf("SLEEP %s\n", seed::datetime_now().c_str());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // time.sleep(1): blocks the loop
  co_return;
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
