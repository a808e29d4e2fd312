// SPDX-License-Identifier: MIT
#include "asyncio/run.hpp"

#include <algorithm>
#include <vector>

#include "asyncio/threads.hpp"

namespace asyncio {

namespace detail {

std::shared_ptr<EventLoop> begin_run(const RunOptions& options) {
  bool nested = false;
  try {
    get_running_loop();
    nested = true;
  } catch (const RuntimeError&) {
  }
  if (nested) throw RuntimeError("asyncio::run() cannot be called from a running event loop");
  LoopOptions lo;
  lo.debug = options.debug;
  lo.virtual_time = options.virtual_time;
  auto loop = new_event_loop(std::move(lo));
  set_event_loop(loop);
  return loop;
}

void end_run(const std::shared_ptr<EventLoop>& loop) noexcept {
  try {
    cancel_all_tasks(*loop);
  } catch (...) {
    loop->call_exception_handler({"unhandled exception during asyncio::run() shutdown", std::current_exception(), {}, {}});
  }
  // Python's Runner.close: loop.run_until_complete(loop.shutdown_default_executor(timeout)).
  shutdown_default_executor_at_exit(*loop);
  set_event_loop(nullptr);
  try {
    loop->close();
  } catch (...) {
  }
}

}  // namespace detail

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
  // In creation order (the loop's list is newest first), so that shutdown is reproducible.
  std::sort(tasks.begin(), tasks.end(), [](const AnyTask& a, const AnyTask& b) { return a.core()->id() < b.core()->id(); });
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
