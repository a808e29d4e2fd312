// SPDX-License-Identifier: MIT
// Smallest real program against the installed package: a task, a sleep, a result.
#include <asyncio/asyncio.hpp>
#include <cstdio>

asyncio::Coro<int> answer() {
  co_await asyncio::sleep(0.001);
  co_return 42;
}

int main() {
  int v = asyncio::run(answer());
  std::printf("consumer: %d\n", v);
}
