// SPDX-License-Identifier: MIT
// TaskGroup: structured concurrency (Python docs, "Task Groups").
//
//   async def main():
//       async with asyncio.TaskGroup() as tg:
//           task1 = tg.create_task(some_coro(...))
//           task2 = tg.create_task(another_coro(...))
//       print(f"Both tasks have completed now: {task1.result()}, {task2.result()}")
//
// The second half shows a failing child: it cancels its sibling, and both outcomes are reported
// together in an ExceptionGroup.
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>

asyncio::Coro<std::string> some_coro(double delay, std::string what) {
  co_await asyncio::sleep(delay);
  co_return what;
}

asyncio::Coro<int> failing(double delay) {
  co_await asyncio::sleep(delay);
  throw std::runtime_error("boom");
}

asyncio::Coro<void> main_coro() {
  asyncio::Task<std::string> task1, task2;
  co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> asyncio::Coro<void> {
    task1 = tg.create_task(some_coro(0.2, "hello"));
    task2 = tg.create_task(some_coro(0.1, "world"));
    co_return;
  });
  std::printf("Both tasks have completed now: %s, %s\n", task1.result().c_str(), task2.result().c_str());

  asyncio::Task<std::string> slow;
  try {
    co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> asyncio::Coro<void> {
      slow = tg.create_task(some_coro(10, "never"));
      tg.create_task(failing(0.1));
      co_return;
    });
  } catch (const asyncio::ExceptionGroup& eg) {
    std::printf("%s; sibling cancelled: %s\n", eg.what(), slow.cancelled() ? "yes" : "no");
    for (auto& e : eg.exceptions()) std::printf("  - %s\n", asyncio::describe_exception(e).c_str());
  }
}

int main() { asyncio::run(main_coro()); }
