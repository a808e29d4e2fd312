// SPDX-License-Identifier: MIT
// The epoll poller: add/modify/remove, readiness bits, timeouts, and cross-thread wakeup.
#include <asyncio/poller.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace {

using namespace std::chrono_literals;
using asyncio::PollEvent;

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void write_byte() const { ASSERT_EQ(::write(w, "x", 1), 1); }
};

std::size_t poll_now(asyncio::Poller& p, std::array<PollEvent, 16>& ev) { return p.poll(ev, 0ns); }

/// The events reported for `fd` in the first `n` entries (0 if none).
std::uint32_t events_for(const std::array<PollEvent, 16>& ev, std::size_t n, int fd) {
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (ev[i].fd == fd) bits |= ev[i].events;
  return bits;
}

TEST(Poller, MakePollerGivesEpoll) {
  auto p = asyncio::make_poller();
  ASSERT_TRUE(p);
  EXPECT_STREQ(p->name(), "epoll");
}

TEST(Poller, IdlePollWithZeroTimeoutReturnsNothing) {
  auto p = asyncio::make_poller();
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 0u);
}

TEST(Poller, AddedReaderIsReportedReadableOnlyWhenDataArrives) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 0u);
  pipe.write_byte();
  std::size_t n = poll_now(*p, ev);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(ev[0].fd, pipe.r);
  EXPECT_TRUE(ev[0].events & asyncio::poll_readable);
  EXPECT_FALSE(ev[0].events & asyncio::poll_error);
}

TEST(Poller, ReadinessIsLevelTriggered) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  pipe.write_byte();
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 1u);
  EXPECT_EQ(poll_now(*p, ev), 1u);  // still unread: still reported
  char c;
  ASSERT_EQ(::read(pipe.r, &c, 1), 1);
  EXPECT_EQ(poll_now(*p, ev), 0u);
}

TEST(Poller, AddedWriterIsReportedWritable) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.w, asyncio::poll_writable);
  std::array<PollEvent, 16> ev{};
  std::size_t n = poll_now(*p, ev);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(ev[0].fd, pipe.w);
  EXPECT_TRUE(ev[0].events & asyncio::poll_writable);
}

TEST(Poller, ModifyChangesTheInterestSet) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.w, asyncio::poll_readable);  // a pipe's write end never becomes readable
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 0u);
  p->modify(pipe.w, asyncio::poll_writable);
  std::size_t n = poll_now(*p, ev);
  EXPECT_TRUE(events_for(ev, n, pipe.w) & asyncio::poll_writable);
  p->modify(pipe.w, asyncio::poll_readable);
  EXPECT_EQ(poll_now(*p, ev), 0u);
}

TEST(Poller, ModifyToReadAndWrite) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  p->add(pipe.w, asyncio::poll_readable);
  p->modify(pipe.w, asyncio::poll_readable | asyncio::poll_writable);
  pipe.write_byte();
  std::array<PollEvent, 16> ev{};
  std::size_t n = poll_now(*p, ev);
  EXPECT_EQ(n, 2u);
  EXPECT_TRUE(events_for(ev, n, pipe.r) & asyncio::poll_readable);
  EXPECT_TRUE(events_for(ev, n, pipe.w) & asyncio::poll_writable);
}

TEST(Poller, RemoveStopsReports) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  pipe.write_byte();
  p->remove(pipe.r);
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 0u);
}

TEST(Poller, RemoveToleratesUnknownAndClosedFds) {
  auto p = asyncio::make_poller();
  int fd;
  {
    Pipe pipe;
    p->add(pipe.r, asyncio::poll_readable);
    fd = pipe.r;
  }  // closed while registered (epoll forgets it by itself)
  p->remove(fd);
  p->remove(12345);
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(poll_now(*p, ev), 0u);
}

TEST(Poller, AddingTheSameFdTwiceThrows) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  EXPECT_THROW(p->add(pipe.r, asyncio::poll_readable), std::system_error);
}

TEST(Poller, ModifyingAnUnknownFdThrows) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  EXPECT_THROW(p->modify(pipe.r, asyncio::poll_readable), std::system_error);
}

TEST(Poller, AddingAnInvalidFdThrows) {
  auto p = asyncio::make_poller();
  EXPECT_THROW(p->add(-1, asyncio::poll_readable), std::system_error);
}

TEST(Poller, HangUpIsReportedAsErrorAndReadable) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  ::close(pipe.w);
  pipe.w = -1;
  std::array<PollEvent, 16> ev{};
  std::size_t n = poll_now(*p, ev);
  ASSERT_EQ(n, 1u);
  EXPECT_TRUE(ev[0].events & asyncio::poll_readable);
  EXPECT_TRUE(ev[0].events & asyncio::poll_error);
}

TEST(Poller, ReportsNoMoreEventsThanTheSpanHolds) {
  auto p = asyncio::make_poller();
  Pipe a, b, c;
  for (auto* pipe : {&a, &b, &c}) {
    p->add(pipe->r, asyncio::poll_readable);
    pipe->write_byte();
  }
  std::array<PollEvent, 2> ev{};
  EXPECT_EQ(p->poll(ev, 0ns), 2u);
  std::array<PollEvent, 16> all{};
  EXPECT_EQ(poll_now(*p, all), 3u);
}

TEST(Poller, TimeoutIsRespected) {
  auto p = asyncio::make_poller();
  std::array<PollEvent, 16> ev{};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->poll(ev, 50ms), 0u);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, 45ms);
  EXPECT_LT(elapsed, 5s);
}

TEST(Poller, SubMillisecondTimeoutStillWaits) {
  // Rounded up, not down to 0: a timer due in 0.3 ms must not make the loop spin.
  auto p = asyncio::make_poller();
  std::array<PollEvent, 16> ev{};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->poll(ev, 300us), 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300us);
}

TEST(Poller, WakeupFromAnotherThreadInterruptsAnUnboundedPoll) {
  auto p = asyncio::make_poller();
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    p->wakeup();
  });
  std::array<PollEvent, 16> ev{};
  auto t0 = std::chrono::steady_clock::now();
  std::size_t n = p->poll(ev, std::chrono::nanoseconds(-1));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  waker.join();
  EXPECT_EQ(n, 0u);  // the wakeup is not an event
  EXPECT_LT(elapsed, 10s);
}

TEST(Poller, WakeupFromAnotherThreadInterruptsALongPoll) {
  auto p = asyncio::make_poller();
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    p->wakeup();
  });
  std::array<PollEvent, 16> ev{};
  auto t0 = std::chrono::steady_clock::now();
  p->poll(ev, 30s);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  waker.join();
  EXPECT_LT(elapsed, 10s);
}

TEST(Poller, WakeupBeforePollMakesTheNextPollReturnPromptly) {
  auto p = asyncio::make_poller();
  p->wakeup();
  std::array<PollEvent, 16> ev{};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->poll(ev, 30s), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(Poller, ManyWakeupsAreDrainedByOnePoll) {
  auto p = asyncio::make_poller();
  for (int i = 0; i < 1000; ++i) p->wakeup();
  std::array<PollEvent, 16> ev{};
  EXPECT_EQ(p->poll(ev, 30s), 0u);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->poll(ev, 50ms), 0u);  // nothing pending any more: this one waits its timeout
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
}

TEST(Poller, WakeupAlongsideReadyFdsReportsOnlyTheFds) {
  auto p = asyncio::make_poller();
  Pipe pipe;
  p->add(pipe.r, asyncio::poll_readable);
  pipe.write_byte();
  p->wakeup();
  std::array<PollEvent, 16> ev{};
  std::size_t n = poll_now(*p, ev);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(ev[0].fd, pipe.r);
}

TEST(Poller, ConcurrentWakeupsFromManyThreadsAreSafe) {
  auto p = asyncio::make_poller();
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000 && !stop.load(); ++i) p->wakeup();
    });
  std::array<PollEvent, 16> ev{};
  for (int i = 0; i < 50; ++i) p->poll(ev, 1ms);
  stop = true;
  for (auto& t : threads) t.join();
  p->poll(ev, 0ns);
  EXPECT_EQ(p->poll(ev, 0ns), 0u);
}

}  // namespace
