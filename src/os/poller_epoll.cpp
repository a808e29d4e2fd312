// SPDX-License-Identifier: MIT
// epoll backend. An eventfd registered alongside the user's descriptors carries wakeup(); it is
// drained here and never reported.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "asyncio/poller.hpp"

namespace asyncio {

namespace {

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t ev = 0;
  if (interest & poll_readable) ev |= EPOLLIN;
  if (interest & poll_writable) ev |= EPOLLOUT;
  return ev;
}

std::uint32_t from_epoll(std::uint32_t ev) {
  std::uint32_t bits = 0;
  if (ev & (EPOLLIN | EPOLLRDHUP)) bits |= poll_readable;
  if (ev & EPOLLOUT) bits |= poll_writable;
  if (ev & (EPOLLERR | EPOLLHUP)) bits |= poll_error | poll_readable | poll_writable;
  return bits;
}

int to_timeout_ms(std::chrono::nanoseconds t) {
  if (t.count() < 0) return -1;
  // Round up, so that a timer is never polled for a moment before it is due (which would spin).
  std::int64_t ns = t.count();
  std::int64_t ms = ns / 1'000'000 + (ns % 1'000'000 != 0 ? 1 : 0);  // (no overflow near INT64_MAX)
  return ms > 2'000'000'000 ? 2'000'000'000 : static_cast<int>(ms);
}

class EpollPoller final : public Poller {
 public:
  EpollPoller() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_errno("epoll_create1");
    wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
      int err = errno;
      ::close(epfd_);
      throw std::system_error(err, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
      int err = errno;
      ::close(wakefd_);
      ::close(epfd_);
      throw std::system_error(err, std::generic_category(), "epoll_ctl(eventfd)");
    }
  }
  ~EpollPoller() override {
    ::close(wakefd_);
    ::close(epfd_);
  }

  void add(int fd, std::uint32_t interest) override { ctl(EPOLL_CTL_ADD, fd, interest); }
  void modify(int fd, std::uint32_t interest) override { ctl(EPOLL_CTL_MOD, fd, interest); }
  void remove(int fd) noexcept override { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

  std::size_t poll(std::span<PollEvent> out, std::chrono::nanoseconds timeout) override {
    if (raw_.size() < out.size()) raw_.resize(out.size());
    int n = ::epoll_wait(epfd_, raw_.data(), static_cast<int>(out.size()), to_timeout_ms(timeout));
    if (n < 0) {
      if (errno == EINTR) return 0;
      throw_errno("epoll_wait");
    }
    std::size_t count = 0;
    for (int i = 0; i < n; ++i) {
      if (raw_[i].data.fd == wakefd_) {
        drain_wakeup();
        continue;
      }
      out[count++] = PollEvent{raw_[i].data.fd, from_epoll(raw_[i].events)};
    }
    return count;
  }

  void wakeup() noexcept override {
    std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: a wake-up is pending anyway.
    [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
  }

  const char* name() const noexcept override { return "epoll"; }

 private:
  void ctl(int op, int fd, std::uint32_t interest) {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, op, fd, &ev) < 0) throw_errno("epoll_ctl");
  }
  void drain_wakeup() noexcept {
    std::uint64_t value;
    [[maybe_unused]] auto r = ::read(wakefd_, &value, sizeof value);
  }

  int epfd_ = -1;
  int wakefd_ = -1;
  std::vector<epoll_event> raw_;
};

}  // namespace

std::unique_ptr<Poller> make_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace asyncio
