// SPDX-License-Identifier: MIT
#include "asyncio/run.hpp"

#include <algorithm>
#include <vector>

#include "asyncio/threads.hpp"
#include "os/signals.hpp"

namespace asyncio {

// ---- Runner --------------------------------------------------------------------------------------

Runner::Runner(RunOptions options) : options_(std::move(options)) {}

Runner::~Runner() {
  try {
    close();
  } catch (...) {
    if (loop_) loop_->call_exception_handler({"unhandled exception while closing a Runner", std::current_exception(), {}, {}});
  }
}

void detail::check_no_running_loop(const char* caller) {
  bool nested = false;
  try {
    get_running_loop();
    nested = true;
  } catch (const RuntimeError&) {
  }
  if (nested) throw RuntimeError(std::string(caller) + " cannot be called from a running event loop");
}

void Runner::lazy_init() {
  if (closed_) throw RuntimeError("Runner is closed");
  if (loop_) return;
  if (options_.loop_factory) {
    loop_ = options_.loop_factory();
    if (!loop_) throw ValueError("loop_factory returned no loop");
    if (options_.debug) loop_->set_debug(true);
    return;
  }
  LoopOptions lo;
  lo.debug = options_.debug;
  lo.virtual_time = options_.virtual_time;
  loop_ = new_event_loop(std::move(lo));
  set_event_loop(loop_);
  set_event_loop_ = true;
}

EventLoop& Runner::get_loop() {
  lazy_init();
  return *loop_;
}

void Runner::close() {
  if (closed_) return;
  closed_ = true;
  if (!loop_) return;
  std::shared_ptr<EventLoop> loop = std::move(loop_);
  struct Finally {
    Runner& r;
    std::shared_ptr<EventLoop>& loop;
    ~Finally() {
      if (r.set_event_loop_) set_event_loop(nullptr);
      try {
        loop->close();
      } catch (...) {
      }
    }
  } finally{*this, loop};
  try {
    cancel_all_tasks(*loop);
  } catch (...) {
    loop->call_exception_handler({"unhandled exception during asyncio::run() shutdown", std::current_exception(), {}, {}});
  }
  // Python's Runner.close: loop.run_until_complete(loop.shutdown_default_executor(timeout)).
  detail::shutdown_default_executor_at_exit(*loop);
}

void Runner::rethrow(std::exception_ptr error, AnyTask& task) {
  // The second Ctrl-C stopped the loop before the main task finished: give up on it now.
  if (interrupt_count_ >= 2) throw KeyboardInterrupt();
  // The first one cancelled the task; if that cancellation is what ended it, it is Ctrl-C's.
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    if (task.uncancel() == 0) throw KeyboardInterrupt();
    throw;
  }
}

Runner::SigintGuard::SigintGuard(Runner& runner, AnyTask task) : runner_(runner) {
  if (!detail::os::on_main_thread() || !detail::os::signal_is_default(detail::os::sigint())) return;
  EventLoop& loop = *runner.loop_;
  Runner* r = &runner;
  loop.add_signal_handler(detail::os::sigint(), [r, task]() mutable {
    ++r->interrupt_count_;
    if (r->interrupt_count_ == 1 && !task.done()) {
      task.cancel();
      return;
    }
    // Not swallowed: run() throws KeyboardInterrupt now, and SIGINT kills from here on.
    r->interrupt_count_ = std::max(r->interrupt_count_, 2);
    r->loop_->remove_signal_handler(detail::os::sigint());
    r->loop_->stop();
  });
  installed_ = true;
}

Runner::SigintGuard::~SigintGuard() {
  if (!installed_ || !runner_.loop_ || runner_.loop_->is_closed()) return;
  try {
    runner_.loop_->remove_signal_handler(detail::os::sigint());
  } catch (...) {
  }
}

namespace {
// Waits for every task in `tasks`; the loop stops when the last one finishes.
struct WaitAll {
  EventLoop* loop;
  std::size_t remaining;
  static void on_done(void* self, detail::FutureStateBase&) {
    auto* w = static_cast<WaitAll*>(self);
    if (--w->remaining == 0) w->loop->stop();
  }
};
}  // namespace

void cancel_all_tasks(EventLoop& loop) {
  std::vector<AnyTask> tasks;
  for (detail::TaskLink* t = loop.first_task(); t; t = t->next_link)
    tasks.emplace_back(static_cast<detail::TaskCore*>(t));
  if (tasks.empty()) return;
  for (auto& t : tasks) t.cancel();

  WaitAll waiter{&loop, 0};
  for (auto& t : tasks) {
    if (t.done()) continue;
    ++waiter.remaining;
    t.state()->add_callback(detail::DoneCallback{&WaitAll::on_done, &waiter});
  }
  if (waiter.remaining > 0) {
    try {
      loop.run_forever();
    } catch (...) {
      for (auto& t : tasks) t.state()->remove_callback(&WaitAll::on_done, &waiter);
      throw;
    }
  }
  for (auto& t : tasks) {
    if (!t.done()) {
      t.state()->remove_callback(&WaitAll::on_done, &waiter);
      continue;
    }
    if (t.cancelled()) continue;
    if (auto e = t.exception())
      loop.call_exception_handler({"unhandled exception during asyncio::run() shutdown", e, t.get_name(), {}});
  }
}

}  // namespace asyncio
