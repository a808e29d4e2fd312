// SPDX-License-Identifier: MIT
// Private to the diagnostics layer: how the diagnostics — await graphs and task dumps
// (inspect.hpp), timeline traces (trace.hpp), the watchdog (watchdog.hpp) and debug mode's
// slow-step report — reach into the loop, tasks and futures.
//
// The core types name `Introspect` as a friend and the loop keeps a `LoopHooks` for it; nothing
// here runs unless a diagnostic is switched on. With all of them off the loop pays one branch per
// iteration (`debug_ || instrumented_` in EventLoop::run_once).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <limits>
#include <typeinfo>

#include "asyncio/coro.hpp"
#include "asyncio/detail/task_core.hpp"
#include "asyncio/gather.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"
#include "asyncio/task_group.hpp"
#include "asyncio/wait.hpp"

namespace asyncio::detail {

class Tracer;         // diag/tracer.hpp
class Watchdog;       // diag/watchdog.cpp
class InspectServer;  // diag/inspect.cpp
/// The loop that serves inspection in this process, if any (one at most; diag/inspect.cpp).
extern std::atomic<EventLoop*> g_inspected_loop;

/// What the loop publishes at the start and end of each ready item while a watchdog watches it.
/// Written by the loop thread, read by the watchdog thread: every field is atomic (TSan-clean),
/// and `seq` works as a sequence lock around the others.
struct StepBeacon {
  std::atomic<std::uint64_t> seq{0};        // odd while an item runs; +1 at its start and its end
  std::atomic<std::uint64_t> task_id{0};    // 0: a plain callback
  std::atomic<const char*> file{nullptr};   // the task's resume point (string literals: any
  std::atomic<const char*> function{nullptr};  // thread may read them at any time)
  std::atomic<std::uint32_t> line{0};
  std::atomic<bool> first_step{false};      // the resume point is the creation site
  static constexpr std::size_t kNameWords = 4;
  std::atomic<std::uint64_t> name[kNameWords] = {};  // a custom task name, truncated, NUL padded

  void begin(TaskCore* task) noexcept;  // diag/introspect.cpp
  void end() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
};

/// The loop's diagnostics state, made on first use and destroyed with the loop.
struct LoopHooks {
  LoopHooks();
  ~LoopHooks();
  LoopHooks(const LoopHooks&) = delete;
  LoopHooks& operator=(const LoopHooks&) = delete;

  // Each deleter is defined next to its class (diag/trace.cpp, watchdog.cpp, inspect.cpp).
  struct Deleter {
    void operator()(Tracer* p) const noexcept;
    void operator()(Watchdog* p) const noexcept;
    void operator()(InspectServer* p) const noexcept;
  };
  std::unique_ptr<Tracer, Deleter> tracer;        // writes its file when destroyed
  std::unique_ptr<Watchdog, Deleter> watchdog;    // joins its thread when destroyed
  std::unique_ptr<InspectServer, Deleter> server; // closes and removes its socket when destroyed
  /// The watchdog's view of the loop (read by its thread while the watchdog runs).
  StepBeacon* beacon = nullptr;
  int loop_index = 0;  // 1, 2, ... in order of first use (trace file names, trace process ids)
};

/// Finds the TaskCore of an object seen through another base (a ready item, an awaited future)
/// without a dynamic_cast per call: the offset from that base to TaskCore is fixed per dynamic
/// type, so it is computed once per type (a program has a handful) and cached, per thread.
template <class Base>
class TaskCaster {
 public:
  TaskCore* operator()(const Base* p) noexcept {
    const std::type_info* type = &typeid(*p);
    for (std::size_t i = 0; i < n_; ++i)
      if (entries_[i].type == type) return apply(p, entries_[i].offset);
    TaskCore* t = dynamic_cast<TaskCore*>(const_cast<Base*>(p));
    std::ptrdiff_t offset = t ? reinterpret_cast<const char*>(t) - reinterpret_cast<const char*>(p) : kNotTask;
    if (n_ < kEntries) entries_[n_++] = Entry{type, offset};
    return t;
  }

 private:
  static constexpr std::ptrdiff_t kNotTask = std::numeric_limits<std::ptrdiff_t>::min();
  static constexpr std::size_t kEntries = 16;
  struct Entry {
    const std::type_info* type;
    std::ptrdiff_t offset;
  };
  static TaskCore* apply(const Base* p, std::ptrdiff_t offset) noexcept {
    if (offset == kNotTask) return nullptr;
    return reinterpret_cast<TaskCore*>(const_cast<char*>(reinterpret_cast<const char*>(p)) + offset);
  }
  Entry entries_[kEntries] = {};
  std::size_t n_ = 0;
};

/// The task behind a ready item or a future, or null.
TaskCore* task_of(const Runnable* r) noexcept;
TaskCore* task_of(const FutureStateBase* f) noexcept;

struct Introspect {
  // ---- the loop ----
  /// The loop's hooks, made on first use.
  static LoopHooks& hooks(EventLoop& loop);
  static LoopHooks* find_hooks(const EventLoop& loop) noexcept { return loop.hooks_.get(); }
  /// Recomputes the loop's instrumented_ flag: on while a tracer or a watchdog is attached.
  static void update_instrumented(EventLoop& loop) noexcept;
  /// EventLoop::run_once's ready items in debug mode or with tracing or a watchdog on.
  static void run_ready_items(EventLoop& loop, std::size_t n);
  /// ASYNCIO_TRACE=path.json, ASYNCIO_WATCHDOG=seconds: called by the loop's constructor.
  static void from_env(EventLoop& loop) noexcept;

  // ---- tasks ----
  static bool started(const TaskCore& t) noexcept { return t.started_; }
  static bool scheduled(const TaskCore& t) noexcept { return t.scheduled_; }
  static Suspension* waiter(const TaskCore& t) noexcept { return t.waiter_; }
  /// The innermost coroutine of a task that is not running now (parked, or woken and not resumed
  /// yet); null before its first step, after its end, and while it runs (then it is stale).
  static CoroPromiseBase* innermost(const TaskCore& t) noexcept {
    return t.started_ && !t.is_running() ? t.innermost_ : nullptr;
  }
  /// Where the task's next step resumes: its innermost await, or its creation site.
  static SourceLocation resume_point(const TaskCore& t) noexcept {
    CoroPromiseBase* p = innermost(t);
    return p ? p->where : t.created_at();
  }

  // ---- futures and who waits for them ----
  using CallbackFn = void (*)(void*, FutureStateBase&);
  /// Calls visit(fn, arg) for each internal done callback of `f`, in registration order.
  template <class F>
  static void for_each_callback(const FutureStateBase& f, F&& visit) {
    if (f.first_fn_) visit(f.first_fn_, f.first_arg_);
    if (f.extras_)
      for (const DoneCallback& cb : f.extras_->more) visit(cb.fn, cb.arg);
  }
  static CallbackFn task_group_callback() noexcept { return &TaskGroup::on_task_done_soon; }
  static const AnyTask& task_group_parent(const TaskGroup& g) noexcept { return g.parent_; }
  static std::size_t task_group_size(const TaskGroup& g) noexcept { return g.tasks_.size(); }
  /// The future the group's exit() waits on while children run, or null.
  static const FutureStateBase* task_group_exit_future(const TaskGroup& g) noexcept {
    return g.on_completed_ ? g.on_completed_.state() : nullptr;
  }
  static CallbackFn wait_callback() noexcept { return &MultiWait::on_done; }
  static FutureStateBase* wait_signal(MultiWait& w) noexcept { return w.signal_.state(); }
  static std::size_t wait_size(const MultiWait& w) noexcept { return w.futures_.size(); }
};

/// "file.cpp:12" (the file's base name), or "" if unknown.
std::string short_location(const char* file, std::uint32_t line);
/// "name" out of a __builtin_FUNCTION or pretty function string; "" if unknown.
std::string short_function(const char* function);
/// What a parked task waits on, in a few words: "sleep 1 s", "Task-3 'fetch'", "lock", ...
std::string describe_wait(const Suspension* s);
/// "Task 'name' (id 3)".
std::string describe_task_briefly(const TaskCore& task);
/// A wait from its parts (WaitTarget::kind, or the awaiter's type when the kind is null).
std::string describe_wait_kind(const char* kind, const std::type_info* type, std::int64_t value);
/// The category of a wait for timelines: "sleep", "task", "future", "lock", "queue", "io", ...
const char* wait_category(const Suspension* s, WaitTarget* target_out = nullptr);
/// The wait category of an awaiter type that does not give WaitTarget::kind, from its name.
const char* category_from_type_name(const std::string& demangled);
/// A demangled type name.
std::string demangle(const char* mangled);

}  // namespace asyncio::detail
