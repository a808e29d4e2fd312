// SPDX-License-Identifier: MIT
// detail::AdaptiveMutex: the lock under Channel<T>, which spins briefly and then sleeps.
#include <asyncio/detail/adaptive_mutex.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using asyncio::detail::AdaptiveMutex;
using namespace std::chrono_literals;

TEST(AdaptiveMutex, KeepsOtherThreadsOutOfTheCriticalSection) {
  AdaptiveMutex m;
  long counter = 0;  // plain: only the lock protects it (TSan checks that it does)
  constexpr int kThreads = 4;
  constexpr long kEach = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (long i = 0; i < kEach; ++i) {
        std::lock_guard lock(m);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, kThreads * kEach);
}

TEST(AdaptiveMutex, TryLockFailsWhileHeldAndSucceedsAfter) {
  AdaptiveMutex m;
  m.lock();
  bool while_held = true;
  std::thread([&] { while_held = m.try_lock(); }).join();
  EXPECT_FALSE(while_held);
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(AdaptiveMutex, AWaiterThatWentToSleepIsWokenByUnlock) {
  AdaptiveMutex m;
  std::atomic<bool> released{false};
  std::atomic<bool> got_it_early{false};
  m.lock();
  std::thread waiter([&] {
    m.lock();  // held far longer than the spin: it sleeps until the unlock wakes it
    got_it_early = !released.load();
    m.unlock();
  });
  std::this_thread::sleep_for(100ms);
  released = true;
  m.unlock();
  waiter.join();  // hangs (and the CTest timeout fails it) if the wake-up were lost
  EXPECT_FALSE(got_it_early.load());
}

}  // namespace
