// SPDX-License-Identifier: MIT
// run_per_core: one thread and one loop per CPU, with the first failure (or SIGINT / SIGTERM)
// cancelling them all.
#include "asyncio/per_core.hpp"

#include <cerrno>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "asyncio/channel.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/task.hpp"
#include "os/cpus.hpp"
#include "os/process.hpp"
#include "os/signals.hpp"

namespace asyncio {

namespace {

/// One loop of the group, as the other threads see it.
struct Member {
  std::mutex m;
  EventLoop* loop = nullptr;  // while its main coroutine runs
  AnyTask main;               // its main task, while it runs (touched on its loop's thread only)
  bool cancel_requested = false;
};

/// The loops of one run_per_core call, and how they ended.
class Group {
 public:
  explicit Group(std::size_t n) : finished(n) {
    for (std::size_t i = 0; i < n; ++i) members_.push_back(std::make_unique<Member>());
  }
  Member& operator[](std::size_t i) { return *members_[i]; }

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
  /// A loop ended with `e` (null: it returned): a failure is kept (in the order they happen) and
  /// cancels the others.
  void ended(std::exception_ptr e) {
    if (!e || is_cancelled_error(e)) return;
    {
      std::lock_guard lock(failures_mutex_);
      failures_.push_back(std::move(e));
    }
    cancel_all();
  }
  std::vector<std::exception_ptr> take_failures() {
    std::lock_guard lock(failures_mutex_);
    return std::move(failures_);
  }

  /// Each loop's thread sends its index here last thing (it never blocks: one slot per loop).
  Channel<std::size_t> finished;

 private:
  std::vector<std::unique_ptr<Member>> members_;
  std::mutex failures_mutex_;
  std::vector<std::exception_ptr> failures_;
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
  std::exception_ptr error;
  try {
    if (options.pin) {
      if (int err = detail::os::pin_current_thread(cpu))
        throw std::system_error(err, std::generic_category(),
                                "run_per_core: pinning loop " + std::to_string(index) + " to CPU " + std::to_string(cpu));
    }
    asyncio::run(member_main(group[index], fn, index), options.run);
  } catch (...) {
    error = std::current_exception();
  }
  group.ended(std::move(error));
  group.finished.try_send(std::size_t{index});
}

/// The calling thread's loop: starts the threads, waits for every loop to finish, and turns
/// SIGTERM (and SIGINT, through asyncio::run's handling on the main thread) into cancelling all.
Coro<void> coordinate(Group& group, std::vector<std::thread>& threads, const PerCoreMain& fn,
                      const PerCoreOptions& options, std::size_t n, const std::vector<int>& cpus) {
  EventLoop& loop = get_running_loop();
  int sigterm = detail::os::sigterm();
  bool on_sigterm = options.handle_signals && detail::os::signal_is_default(sigterm);
  if (on_sigterm) loop.add_signal_handler(sigterm, [&group] { group.cancel_all(); });
  struct RemoveHandler {
    EventLoop& loop;
    int sig;
    bool installed;
    ~RemoveHandler() {
      if (!installed) return;
      try {
        loop.remove_signal_handler(sig);
      } catch (...) {
      }
    }
  } remove{loop, sigterm, on_sigterm};

  for (std::size_t i = 0; i < n; ++i)
    threads.emplace_back(run_member, std::ref(group), i, std::cref(fn), std::cref(options), cpus[i % cpus.size()]);
  bool interrupted = false;
  for (std::size_t left = n; left > 0;) {
    try {
      co_await group.finished.recv();
      --left;
    } catch (const CancelledError&) {
      // Ctrl-C (asyncio::run cancels its main task): stop every loop, and wait for them.
      interrupted = true;
      group.cancel_all();
    }
  }
  if (interrupted) throw CancelledError();  // asyncio::run makes it KeyboardInterrupt
}

}  // namespace

std::size_t usable_cpu_count() { return detail::os::usable_cpus().size(); }

void run_per_core(PerCoreMain fn, PerCoreOptions options) {
  std::vector<int> cpus = detail::os::usable_cpus();
  std::size_t n = options.loops ? options.loops : cpus.size();
  Group group(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  std::exception_ptr interrupted;
  try {
    asyncio::run(coordinate(group, threads, fn, options, n, cpus));
  } catch (...) {
    interrupted = std::current_exception();  // KeyboardInterrupt, or a thread that could not start
    group.cancel_all();
  }
  for (auto& t : threads) t.join();
  std::vector<std::exception_ptr> failures = group.take_failures();
  if (!failures.empty())
    throw ExceptionGroup("run_per_core: " + std::to_string(failures.size()) + " of " + std::to_string(n) + " loops failed",
                         std::move(failures));
  if (interrupted) std::rethrow_exception(interrupted);
}

void run_per_core(PerCoreMain fn, std::size_t loops) {
  PerCoreOptions options;
  options.loops = loops;
  run_per_core(std::move(fn), std::move(options));
}

}  // namespace asyncio
