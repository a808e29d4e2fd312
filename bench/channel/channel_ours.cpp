// SPDX-License-Identifier: MIT
// Channel benchmark, ours (bench/run_channel.sh runs it beside its Go and Boost.Asio peers).
//
//   channel_ours [--quick] [--only pingpong|tput_1x1|tput_4x4|tput_1x1_one_loop|tput_4x4_one_loop|
//                                 floor_1x1|floor_4x4]
//
// pingpong: two loops on two threads, two Channel<long>s of capacity 1; a round trip is a send
//   from loop A to loop B and B's reply. Reports ns per round trip.
// tput_1x1 / tput_4x4: P producer loops and P consumer loops (one thread each), one shared
//   Channel<long> of capacity 1024; every producer sends N/P items, consumers receive until the
//   channel is closed. Reports items per second.
// tput_1x1_one_loop / tput_4x4_one_loop: the same with every producer and consumer a task of one
//   loop on one thread.
// floor_1x1 / floor_4x4: the floor of tput_1x1 / tput_4x4 on this machine: plain threads, no loop,
//   that never park; each retries try_send / try_recv, giving its CPU away between tries. What
//   the threads and the ring cost alone, without waiting or waking.
// One line per workload: "RESULT <workload> <value>".
#include <asyncio/asyncio.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

/// A loop on a thread of its own, running one coroutine to completion.
template <class F>
std::thread loop_thread(F body) {
  return std::thread([body = std::move(body)]() mutable { asyncio::run(body()); });
}

/// Items per second since `t0`, saying so on stderr if fewer than `sent` arrived.
double items_per_second(long received, long sent, Clock::time_point t0, const char* workload) {
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (received != sent) std::fprintf(stderr, "%s: lost items\n", workload);
  return static_cast<double>(received) / seconds;
}

double pingpong(long rounds) {
  asyncio::Channel<long> ping(1), pong(1);
  auto t0 = Clock::now();
  std::thread b = loop_thread([&]() -> asyncio::Coro<void> {
    for (long i = 0; i < rounds; ++i) co_await pong.send(co_await ping.recv() + 1);
  });
  std::thread a = loop_thread([&]() -> asyncio::Coro<void> {
    long v = 0;
    for (long i = 0; i < rounds; ++i) {
      co_await ping.send(long{v});
      v = co_await pong.recv();
    }
    if (v != rounds) std::fprintf(stderr, "pingpong: wrong count %ld\n", v);
  });
  a.join();
  b.join();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(rounds);
}

double throughput(int pairs, long items) {
  asyncio::Channel<long> ch(1024);
  std::atomic<int> producers_left{pairs};
  std::atomic<long> received{0};
  long per_producer = items / pairs;
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int p = 0; p < pairs; ++p) {
    threads.push_back(loop_thread([&]() -> asyncio::Coro<void> {
      for (long i = 0; i < per_producer; ++i) co_await ch.send(long{i});
      if (--producers_left == 0) ch.close();
    }));
    threads.push_back(loop_thread([&]() -> asyncio::Coro<void> {
      long n = 0;
      try {
        for (;;) {
          co_await ch.recv();
          ++n;
        }
      } catch (const asyncio::ChannelClosed&) {
      }
      received += n;
    }));
  }
  for (auto& t : threads) t.join();
  return items_per_second(received.load(), per_producer * pairs, t0, "throughput");
}

/// The same work with every producer and consumer a task of one loop (the shape Go's scheduler
/// makes of it when a woken goroutine runs on its waker's thread).
double throughput_one_loop(int pairs, long items) {
  long per_producer = items / pairs;
  long received = 0;
  auto t0 = Clock::now();
  asyncio::run([](int pairs, long per_producer, long& received) -> asyncio::Coro<void> {
    asyncio::Channel<long> ch(1024);
    auto produce = [](asyncio::Channel<long>& c, long n) -> asyncio::Coro<void> {
      for (long i = 0; i < n; ++i) co_await c.send(long{i});
    };
    auto consume = [](asyncio::Channel<long>& c, long& total) -> asyncio::Coro<void> {
      try {
        for (;;) {
          co_await c.recv();
          ++total;
        }
      } catch (const asyncio::ChannelClosed&) {
      }
    };
    std::vector<asyncio::Task<void>> producers, consumers;
    for (int p = 0; p < pairs; ++p) {
      producers.push_back(asyncio::create_task(produce(ch, per_producer)));
      consumers.push_back(asyncio::create_task(consume(ch, received)));
    }
    for (auto& t : producers) co_await t;
    ch.close();
    for (auto& t : consumers) co_await t;
  }(pairs, per_producer, received));
  return items_per_second(received, per_producer * pairs, t0, "throughput_one_loop");
}

/// tput's work done by plain threads that never park: try_send / try_recv, and a yield between
/// tries (with more threads than CPUs, spinning without yielding would starve the other side).
double floor_throughput(int pairs, long items) {
  asyncio::Channel<long> ch(1024);
  std::atomic<int> producers_left{pairs};
  std::atomic<long> received{0};
  long per_producer = items / pairs;
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int p = 0; p < pairs; ++p) {
    threads.emplace_back([&] {
      for (long i = 0; i < per_producer; ++i)
        while (!ch.try_send(long{i})) std::this_thread::yield();
      if (--producers_left == 0) ch.close();
    });
    threads.emplace_back([&] {
      long n = 0;
      try {
        for (;;) {
          if (ch.try_recv())
            ++n;
          else
            std::this_thread::yield();
        }
      } catch (const asyncio::ChannelClosed&) {
      }
      received += n;
    });
  }
  for (auto& t : threads) t.join();
  return items_per_second(received.load(), per_producer * pairs, t0, "floor_throughput");
}

}  // namespace

int main(int argc, char** argv) {
  long scale = 1;
  const char* only = nullptr;  // --only WORKLOAD: that one alone (for profiling)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) scale = 100;
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
  }
  auto wanted = [only](const char* name) { return !only || std::strcmp(only, name) == 0; };
  if (wanted("pingpong")) std::printf("RESULT pingpong_ns %.1f\n", pingpong(200'000 / scale));
  if (wanted("tput_1x1")) std::printf("RESULT tput_1x1 %.0f\n", throughput(1, 4'000'000 / scale));
  if (wanted("tput_4x4")) std::printf("RESULT tput_4x4 %.0f\n", throughput(4, 4'000'000 / scale));
  if (wanted("tput_1x1_one_loop"))
    std::printf("RESULT tput_1x1_one_loop %.0f\n", throughput_one_loop(1, 4'000'000 / scale));
  if (wanted("tput_4x4_one_loop"))
    std::printf("RESULT tput_4x4_one_loop %.0f\n", throughput_one_loop(4, 4'000'000 / scale));
  if (wanted("floor_1x1")) std::printf("RESULT floor_1x1 %.0f\n", floor_throughput(1, 4'000'000 / scale));
  if (wanted("floor_4x4")) std::printf("RESULT floor_4x4 %.0f\n", floor_throughput(4, 4'000'000 / scale));
}
