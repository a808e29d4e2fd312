// SPDX-License-Identifier: MIT
// Bringing blocking code into an async program: asyncio.to_thread.
//
// The seed's first program blocked the whole loop with time.sleep(1): task B could not run while
// task A slept, so the run took 5 s. Legacy code often blocks like that (a library call, a file
// read, a sleep) and cannot be rewritten. Python's answer is to move the blocking call to a
// thread and await it:
//
//   async def custom_sleep():
//       print('SLEEP', datetime.now())
//       await asyncio.to_thread(time.sleep, 1)       # blocks a worker thread, not the loop
//
//   async def read_file(path):
//       return await asyncio.to_thread(legacy_read, path)   # a real blocking read()
//
// Here the seed's factorial tasks run with that custom_sleep, next to a ticker task that prints
// every 0.25 s, and a blocking read of a file. The ticker never misses a beat, the two factorials
// overlap (≈ 3 s in total instead of 5), and the loop is never stalled.
#include <asyncio/asyncio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>

#include "seed_clock.hpp"

// Legacy blocking code, used as it is.
void legacy_sleep(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

std::size_t legacy_read(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  char buf[65536];
  std::size_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);  // blocking read(2)
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw std::system_error(e, std::generic_category(), "read " + path);
    }
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return total;
}

asyncio::Coro<void> custom_sleep() {
  std::printf("SLEEP %s\n", seed::datetime_now().c_str());
  co_await asyncio::to_thread(legacy_sleep, 1.0);
}

asyncio::Coro<void> factorial(std::string name, int number) {
  long f = 1;
  for (int i = 2; i <= number; ++i) {
    std::printf("Task %s: Compute factorial(%d)\n", name.c_str(), i);
    co_await custom_sleep();
    f *= i;
  }
  std::printf("Task %s: factorial(%d) is %ld\n", name.c_str(), number, f);
}

asyncio::Coro<void> ticker(double start, int& ticks) {
  auto& loop = asyncio::get_running_loop();
  for (;;) {
    co_await asyncio::sleep(0.25);
    ++ticks;
    std::printf("  tick %2d at %.2fs\n", ticks, loop.time() - start);
  }
}

asyncio::Coro<void> main_coro(std::string path) {
  auto& loop = asyncio::get_running_loop();
  double start = loop.time();
  int ticks = 0;
  auto tick = asyncio::create_task(ticker(start, ticks));

  std::size_t bytes = co_await asyncio::to_thread(legacy_read, path);
  std::printf("read %zu bytes of %s in a worker thread\n", bytes, path.c_str());

  co_await asyncio::gather(factorial("A", 3), factorial("B", 4));

  double total = loop.time() - start;
  tick.cancel();
  co_await asyncio::gather(asyncio::return_exceptions, tick);
  std::printf("Total time: %.2fs; the ticker ticked %d times (every 0.25 s, never stalled)\n", total, ticks);
}

int main(int argc, char** argv) {
  // Any file will do; by default the program reads its own executable.
  asyncio::run(main_coro(argc > 1 ? argv[1] : "/proc/self/exe"));
}
