// SPDX-License-Identifier: MIT
// Channel benchmark, Boost.Asio peer (bench/run_channel.sh): the same workloads as
// channel_ours.cpp with asio::experimental::concurrent_channel (Boost 1.81) and C++20
// coroutines, one io_context per thread as ours has one loop per thread.
//
//   channel_asio [--quick]
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code, long)>;
using Clock = std::chrono::steady_clock;
using asio::awaitable;
using asio::use_awaitable;

namespace {

/// Runs `make()`'s coroutine on an io_context of its own thread.
template <class F>
std::thread context_thread(F make) {
  return std::thread([make = std::move(make)]() mutable {
    asio::io_context io(1);
    asio::co_spawn(io, make(), asio::detached);
    io.run();
  });
}

double pingpong(long rounds) {
  // The channels' executors do not matter for a concurrent_channel: each side awaits on its own.
  asio::io_context holder;
  Channel ping(holder, 1), pong(holder, 1);
  auto t0 = Clock::now();
  std::thread b = context_thread([&]() -> awaitable<void> {
    for (long i = 0; i < rounds; ++i) {
      long v = co_await ping.async_receive(use_awaitable);
      co_await pong.async_send(boost::system::error_code{}, v + 1, use_awaitable);
    }
  });
  std::thread a = context_thread([&]() -> awaitable<void> {
    long v = 0;
    for (long i = 0; i < rounds; ++i) {
      co_await ping.async_send(boost::system::error_code{}, v, use_awaitable);
      v = co_await pong.async_receive(use_awaitable);
    }
    if (v != rounds) std::fprintf(stderr, "pingpong: wrong count %ld\n", v);
  });
  a.join();
  b.join();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(rounds);
}

double throughput(int pairs, long items) {
  asio::io_context holder;
  Channel ch(holder, 1024);
  std::atomic<int> producers_left{pairs};
  std::atomic<long> received{0};
  long per_producer = items / pairs;
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int p = 0; p < pairs; ++p) {
    threads.push_back(context_thread([&]() -> awaitable<void> {
      for (long i = 0; i < per_producer; ++i) co_await ch.async_send(boost::system::error_code{}, i, use_awaitable);
      // Asio's close() drops what is buffered: the last producer sends one end mark per consumer.
      if (--producers_left == 0)
        for (int c = 0; c < pairs; ++c) co_await ch.async_send(boost::system::error_code{}, -1L, use_awaitable);
    }));
    threads.push_back(context_thread([&]() -> awaitable<void> {
      long n = 0;
      for (;;) {
        long v = co_await ch.async_receive(use_awaitable);
        if (v < 0) break;  // the end mark
        ++n;
      }
      received += n;
    }));
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (received != per_producer * pairs) std::fprintf(stderr, "throughput: lost items\n");
  return static_cast<double>(received.load()) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  long scale = quick ? 100 : 1;
  std::printf("RESULT pingpong_ns %.1f\n", pingpong(200'000 / scale));
  std::printf("RESULT tput_1x1 %.0f\n", throughput(1, 4'000'000 / scale));
  std::printf("RESULT tput_4x4 %.0f\n", throughput(4, 4'000'000 / scale));
}
