// SPDX-License-Identifier: MIT
#include "asyncio/task.hpp"

#include <atomic>
#include <cstring>

namespace asyncio {
namespace detail {

constinit thread_local TaskCore* t_current_task = nullptr;

namespace {
std::atomic<std::uint64_t> g_task_counter{0};
}  // namespace

std::string short_function_name(const char* full) {
  // "asyncio::Coro<void> factorial(std::string, int)" -> "factorial"
  std::string s(full ? full : "");
  // A lambda's call operator ("operator()" from __builtin_FUNCTION, or "... operator()(...)"):
  // its parameter list starts after the operator's own parentheses.
  auto op = s.find("operator()");
  auto paren = s.find('(', op == std::string::npos ? 0 : op + 10);
  if (paren != std::string::npos) s.resize(paren);
  auto space = s.rfind(' ');
  if (space != std::string::npos) s.erase(0, space + 1);
  return s;
}

std::string location_string(const SourceLocation& loc) {
  if (!loc.file_name() || !*loc.file_name()) return {};
  const char* file = loc.file_name();
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  return std::string(file) + ":" + std::to_string(loc.line);
}

TaskCore& require_current_task(const char* what) {
  if (!t_current_task)
    throw RuntimeError(std::string("cannot ") + what + " outside a task: run the coroutine with "
                       "asyncio::run, run_until_complete or create_task");
  return *t_current_task;
}

TaskCore::TaskCore(FutureStateBase* future, std::coroutine_handle<> top, SourceLocation created) noexcept
    : top_(top),
      future_(future),
      created_file_(created.file),
      id_(g_task_counter.fetch_add(1, std::memory_order_relaxed) + 1),
      created_line_(created.line) {}

void TaskCore::start() {
  loop()->link_task(this);
  linked_ = true;
  future_->add_ref();  // the loop owns every unfinished task
  wake();
}

bool TaskCore::cancel(const std::string& msg) {
  if (future_->done()) return false;
  ++num_cancels_requested_;
  future_->set_cancel_message(msg);
  if (!scheduled_ && waiter_ && waiter_->cancel_wait(msg)) return true;
  must_cancel_ = true;
  return true;
}

std::uint32_t TaskCore::uncancel() noexcept {
  if (num_cancels_requested_ > 0) --num_cancels_requested_;
  if (num_cancels_requested_ == 0) must_cancel_ = false;
  return num_cancels_requested_;
}

std::string TaskCore::get_name() const {
  if (const std::string* name = future_->name()) return *name;
  return "Task-" + std::to_string(id_);
}

void TaskCore::set_name(std::string name) { future_->set_name(std::move(name)); }

SourceLocation TaskCore::resume_location() const noexcept {
  return (started_ && innermost_) ? innermost_->where : created_at();
}

std::string TaskCore::describe() const {
  std::string text = "Task '" + get_name() + "'";
  if (CoroPromiseBase* top = top_promise()) {
    // The top coroutine's function, from the site of its latest await (if it awaited yet).
    if (started_ && top->where.function_name() && *top->where.function_name())
      text += " coro=" + short_function_name(top->where.function_name()) + "()";
  }
  text += " created at " + location_string(created_at());
  if (started_ && innermost_) text += ", resumed at " + location_string(innermost_->where);
  return text;
}

void TaskCore::run() {
  scheduled_ = false;
  step();
  future_->release();  // the ready queue's reference
}

void TaskCore::discard() noexcept {
  scheduled_ = false;
  future_->release();
}

void TaskCore::step() {
  if (future_->done() || !top_) return;
  if (must_cancel_) {
    must_cancel_ = false;
    if (!started_) {
      // Cancelled before its first step: the coroutine body never runs (Python throws the
      // CancelledError in at the very start).
      destroy_coro();
      future_->mark_cancelled(future_->cancel_message());
      finish_bookkeeping();
      return;
    }
    deliver_cancel_ = true;
  }
  started_ = true;
  TaskCore* previous = t_current_task;
  t_current_task = this;
  Suspension* parked = std::exchange(waiter_, nullptr);
  std::coroutine_handle<> h = parked ? parked->resume_ : top_;
  h.resume();
  t_current_task = previous;

  if (top_.done()) {
    deliver_cancel_ = false;
    innermost_ = nullptr;
    finish_from_top();
    return;
  }
  innermost_ = t_last_await;
  if (must_cancel_ && !scheduled_ && waiter_ && waiter_->cancel_wait(future_->cancel_message()))
    must_cancel_ = false;
}

void TaskCore::finish_from_top() {
  // Cancelled while running its last step: the task ends cancelled even though the coroutine
  // returned (Python's "Task is cancelled right before coro stops").
  if (must_cancel_) {
    must_cancel_ = false;
    std::exception_ptr e = top_exception();
    std::string message;
    if (!e || is_cancelled_error(e, message)) {
      destroy_coro();
      future_->mark_cancelled(future_->cancel_message());
      finish_bookkeeping();
      return;
    }
  }
  complete_from_coro();
  finish_bookkeeping();
}

void TaskCore::complete_with_exception(std::exception_ptr e) {
  std::string message;
  if (is_cancelled_error(e, message))
    future_->mark_cancelled(message);
  else
    future_->set_exception(std::move(e));
}

void TaskCore::destroy_coro() noexcept {
  if (!top_) return;
  std::coroutine_handle<> h = top_;
  top_ = {};
  waiter_ = nullptr;
  innermost_ = nullptr;
  h.destroy();
}

void TaskCore::finish_bookkeeping() noexcept {
  if (!linked_) return;
  linked_ = false;
  loop()->unlink_task(this);
  future_->release();  // the loop's ownership; the caller still holds a reference
}

void TaskCore::destroy_pending() noexcept {
  future_->add_ref();
  ExceptionContext ctx{"Task was destroyed but it is pending!", nullptr, get_name(), location_string(created_at())};
  loop()->call_exception_handler(ctx);
  destroy_coro();
  finish_bookkeeping();
  future_->release();
}

void run_until_done(EventLoop& loop, FutureStateBase& f) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  auto stop = [](void* arg, FutureStateBase&) { static_cast<EventLoop*>(arg)->stop(); };
  void (*stop_fn)(void*, FutureStateBase&) = stop;
  if (f.done())
    loop.stop();
  else
    f.add_callback(DoneCallback{stop_fn, &loop});
  try {
    loop.run_forever();
  } catch (...) {
    f.remove_callback(stop_fn, &loop);
    throw;
  }
  f.remove_callback(stop_fn, &loop);
  if (!f.done()) throw RuntimeError("Event loop stopped before Future completed.");
}

}  // namespace detail

AnyTask current_task() {
  get_running_loop();  // throws if none
  return AnyTask(detail::t_current_task);
}

std::vector<AnyTask> all_tasks() {
  EventLoop& loop = get_running_loop();
  std::vector<AnyTask> tasks;
  tasks.reserve(loop.task_count());
  for (detail::TaskLink* t = loop.first_task(); t; t = t->next_link)
    tasks.emplace_back(static_cast<detail::TaskCore*>(t));
  return tasks;
}

}  // namespace asyncio
