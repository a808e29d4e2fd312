// SPDX-License-Identifier: MIT
// The watchdog thread (watchdog.hpp). It reads only the loop's StepBeacon (atomics), a few times
// per threshold, and reports through asyncio::log; it never touches the loop.
#include "asyncio/watchdog.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "asyncio/log.hpp"
#include "diag/introspect.hpp"

namespace asyncio {
namespace detail {

class Watchdog {
 public:
  explicit Watchdog(double threshold) : threshold_(threshold), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  StepBeacon beacon;

 private:
  struct Snapshot {
    std::uint64_t task_id = 0;
    const char* file = nullptr;
    const char* function = nullptr;
    std::uint32_t line = 0;
    bool first_step = false;
    std::string name;
  };

  /// Reads the beacon's description of the step `seq` names; false if that step ended meanwhile.
  bool read(std::uint64_t seq, Snapshot& out) {
    out.task_id = beacon.task_id.load(std::memory_order_acquire);
    out.file = beacon.file.load(std::memory_order_acquire);
    out.function = beacon.function.load(std::memory_order_acquire);
    out.line = beacon.line.load(std::memory_order_acquire);
    out.first_step = beacon.first_step.load(std::memory_order_acquire);
    char chars[sizeof(std::uint64_t) * StepBeacon::kNameWords + 1] = {};
    for (std::size_t i = 0; i < StepBeacon::kNameWords; ++i) {
      std::uint64_t w = beacon.name[i].load(std::memory_order_acquire);
      std::memcpy(chars + i * sizeof w, &w, sizeof w);
    }
    out.name = chars;
    return beacon.seq.load(std::memory_order_relaxed) == seq;
  }

  static std::string culprit(const Snapshot& s) {
    if (s.task_id == 0) return "a callback";
    std::string name = s.name.empty() ? "Task-" + std::to_string(s.task_id) : s.name;
    std::string text = "Task '" + name + "' (id " + std::to_string(s.task_id) + "), ";
    if (s.first_step) return text + "in its first step (created at " + short_location(s.file, s.line) + ")";
    text += "in the step that resumed at " + short_location(s.file, s.line);
    std::string fn = short_function(s.function);
    if (!fn.empty()) text += " in " + fn + "()";
    return text;
  }

  static std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", s);
    return buf;
  }

  void watch() {
    using Clock = std::chrono::steady_clock;
    const auto threshold = std::chrono::duration<double>(threshold_);
    // Sample often enough that a stall is seen within an eighth of the threshold.
    const auto interval = std::clamp<Clock::duration>(
        std::chrono::duration_cast<Clock::duration>(threshold / 8), std::chrono::milliseconds(1),
        std::chrono::milliseconds(100));
    std::uint64_t last = 0;
    Clock::time_point first_seen = Clock::now();
    bool reported = false;
    Snapshot snap;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
      std::uint64_t seq = beacon.seq.load(std::memory_order_acquire);
      Clock::time_point now = Clock::now();
      if (seq != last) {
        if (reported) {
          double held = std::chrono::duration<double>(now - first_seen).count();
          log(LogLevel::warning, "watchdog: the event loop was blocked for about " + seconds(held) + " s by " +
                                     culprit(snap) + "; it runs again");
        }
        last = seq;
        first_seen = now;
        reported = false;
        continue;
      }
      if (!(seq & 1) || reported || now - first_seen < threshold) continue;
      if (!read(seq, snap)) continue;  // the step just ended
      double held = std::chrono::duration<double>(now - first_seen).count();
      log(LogLevel::warning, "watchdog: the event loop has been blocked for at least " + seconds(held) +
                                 " s (still blocked) by " + culprit(snap));
      reported = true;
    }
  }

  double threshold_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

void LoopHooks::Deleter::operator()(Watchdog* p) const noexcept { delete p; }

}  // namespace detail

void enable_watchdog(EventLoop& loop, double threshold_seconds) {
  if (!(threshold_seconds > 0)) throw ValueError("the watchdog's threshold must be positive");
  detail::LoopHooks& h = detail::Introspect::hooks(loop);
  h.beacon = nullptr;
  h.watchdog.reset();
  h.watchdog.reset(new detail::Watchdog(threshold_seconds));
  h.beacon = &h.watchdog->beacon;
  detail::Introspect::update_instrumented(loop);
}

bool disable_watchdog(EventLoop& loop) {
  detail::LoopHooks* h = detail::Introspect::find_hooks(loop);
  if (!h || !h->watchdog) return false;
  h->beacon = nullptr;
  h->watchdog.reset();
  detail::Introspect::update_instrumented(loop);
  return true;
}

}  // namespace asyncio
