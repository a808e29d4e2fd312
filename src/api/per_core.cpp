// SPDX-License-Identifier: MIT
// run_per_core: one thread and one loop per CPU, with the first failure cancelling them all.
#include "asyncio/per_core.hpp"

#include <cerrno>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "asyncio/errors.hpp"
#include "asyncio/task.hpp"
#include "asyncio/threads.hpp"
#include "os/cpus.hpp"

namespace asyncio {

namespace {

/// One loop of the group, as the other threads see it.
struct Member {
  std::mutex m;
  EventLoop* loop = nullptr;  // while its main coroutine runs
  AnyTask main;               // its main task, while it runs (touched on its loop's thread only)
  bool cancel_requested = false;
  ConcurrentFuture<void> done;  // how its thread ended
};

/// The loops of one run_per_core call.
class Group {
 public:
  explicit Group(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) members_.push_back(std::make_unique<Member>());
  }
  Member& operator[](std::size_t i) { return *members_[i]; }
  std::size_t size() const { return members_.size(); }

  /// Cancels every loop's main task (from any thread); a loop that has not started yet cancels
  /// it as soon as it starts. Idempotent.
  void cancel_all() noexcept {
    for (auto& mb : members_) {
      std::lock_guard lock(mb->m);
      if (mb->cancel_requested) continue;
      mb->cancel_requested = true;
      if (!mb->loop) continue;  // not started (it will look at the flag) or finished
      Member* target = mb.get();
      try {
        mb->loop->call_soon_threadsafe([target] {
          if (target->main) target->main.cancel();
        });
      } catch (...) {
        // The loop is closing: its main coroutine is over already.
      }
    }
  }

 private:
  std::vector<std::unique_ptr<Member>> members_;
};

/// The main task of loop `index`: registers itself where cancel_all finds it, then runs fn.
Coro<void> member_main(Member& mb, const PerCoreMain& fn, std::size_t index) {
  struct Registration {
    Member& mb;
    explicit Registration(Member& m) : mb(m) {
      std::lock_guard lock(mb.m);
      mb.loop = &get_running_loop();
      mb.main = current_task();
      if (mb.cancel_requested) mb.main.cancel();  // raised at fn's first await
    }
    ~Registration() {
      std::lock_guard lock(mb.m);
      mb.loop = nullptr;
      mb.main = AnyTask();
    }
  } registration(mb);
  co_await fn(index);
}

void run_member(Group& group, std::size_t index, const PerCoreMain& fn, const PerCoreOptions& options, int cpu) {
  Member& mb = group[index];
  try {
    if (options.pin) {
      if (int err = detail::os::pin_current_thread(cpu))
        throw std::system_error(err, std::generic_category(), "run_per_core: pinning loop " + std::to_string(index) + " to CPU " + std::to_string(cpu));
    }
    asyncio::run(member_main(mb, fn, index), options.run);
    mb.done.set_result();
  } catch (...) {
    mb.done.set_exception(std::current_exception());
  }
}

}  // namespace

std::size_t usable_cpu_count() { return detail::os::usable_cpus().size(); }

void run_per_core(PerCoreMain fn, PerCoreOptions options) {
  std::vector<int> cpus = detail::os::usable_cpus();
  std::size_t n = options.loops ? options.loops : cpus.size();
  Group group(n);
  // The first failure cancels the others: noticed on the thread where it happens, and kept in
  // the order the failures happened.
  std::mutex failures_mutex;
  std::vector<std::exception_ptr> failures;
  for (std::size_t i = 0; i < n; ++i) {
    group[i].done.add_done_callback([&](ConcurrentFuture<void> f) {
      std::exception_ptr e = f.exception(0.0);
      if (!e || is_cancelled_error(e)) return;
      {
        std::lock_guard lock(failures_mutex);
        failures.push_back(std::move(e));
      }
      group.cancel_all();
    });
  }
  std::vector<std::thread> threads;
  threads.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i)
      threads.emplace_back(run_member, std::ref(group), i, std::cref(fn), std::cref(options), cpus[i % cpus.size()]);
  } catch (...) {
    group.cancel_all();  // could not start every thread: stop those that run
    for (auto& t : threads) t.join();
    throw;
  }
  for (auto& t : threads) t.join();
  if (!failures.empty())
    throw ExceptionGroup("run_per_core: " + std::to_string(failures.size()) + " of " + std::to_string(n) + " loops failed", std::move(failures));
}

void run_per_core(PerCoreMain fn, std::size_t loops) {
  PerCoreOptions options;
  options.loops = loops;
  run_per_core(std::move(fn), std::move(options));
}

}  // namespace asyncio
