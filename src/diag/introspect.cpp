// SPDX-License-Identifier: MIT
// The loop side of the diagnostics: the instrumented way of running ready items
// (debug mode's slow-step report, tracing, the watchdog's beacon), and helpers the diagnostics
// share. See introspect.hpp.
#include "diag/introspect.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "asyncio/inspect.hpp"
#include "asyncio/log.hpp"
#include "asyncio/trace.hpp"
#include "asyncio/watchdog.hpp"
#include "diag/tracer.hpp"

namespace asyncio::detail {

namespace {
constinit thread_local TaskCaster<Runnable> t_runnable_caster;
constinit thread_local TaskCaster<FutureStateBase> t_future_caster;
std::atomic<int> g_hooked_loops{0};
std::atomic<int> g_env_traces{0};

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

/// "file.cpp:12 in f()" for a resume point.
std::string where_string(const SourceLocation& at) {
  std::string text = short_location(at.file, at.line);
  std::string fn = short_function(at.function);
  if (!fn.empty()) text += " in " + fn + "()";
  return text;
}

/// Debug mode: what the loop reports about a task step that held it too long.
void report_slow_step(TaskCore& task, double took, bool was_first, const SourceLocation& began,
                      const char* top_function) {
  std::string text = "Executing Task '" + task.get_name() + "'";
  if (!(top_function && *top_function))
    if (CoroPromiseBase* top = task.top_promise()) top_function = top->where.function;
  std::string fn = short_function(top_function);
  if (!fn.empty()) text += " coro=" + fn + "()";
  text += " created at " + short_location(task.created_at().file, task.created_at().line);
  text += " took " + format_seconds(took) + " seconds: the step began at ";
  text += was_first ? "the task's start" : where_string(began);
  text += " and ended ";
  if (task.future()->done())
    text += "with the task's end";
  else
    text += "at " + where_string(Introspect::resume_point(task));
  log(LogLevel::warning, text);
}

/// Holds a task across its step, so that it can be looked at afterwards.
struct KeepTask {
  TaskCore* task;
  explicit KeepTask(TaskCore* t) noexcept : task(t) {
    if (task) task->future()->add_ref();
  }
  ~KeepTask() {
    if (task) task->future()->release();
  }
  KeepTask(const KeepTask&) = delete;
  KeepTask& operator=(const KeepTask&) = delete;
};
}  // namespace

TaskCore* task_of(const Runnable* r) noexcept { return t_runnable_caster(r); }
TaskCore* task_of(const FutureStateBase* f) noexcept { return t_future_caster(f); }

// ---- hooks -------------------------------------------------------------------------------------

LoopHooks::LoopHooks() : loop_index(g_hooked_loops.fetch_add(1, std::memory_order_relaxed) + 1) {}

LoopHooks::~LoopHooks() {
  // A trace still running when its loop goes (ASYNCIO_TRACE, or no stop_trace) is written now.
  if (tracer) {
    std::string error;
    if (!tracer->write(error)) log(LogLevel::error, "cannot write the trace: " + error);
  }
  // Members go in reverse order: the server, then the watchdog (joined), then the tracer.
}

LoopHooks& Introspect::hooks(EventLoop& loop) {
  if (!loop.hooks_) loop.hooks_ = std::make_shared<LoopHooks>();
  return *loop.hooks_;
}

void Introspect::update_instrumented(EventLoop& loop) noexcept {
  LoopHooks* h = loop.hooks_.get();
  loop.instrumented_ = h && (h->tracer || h->beacon);
}

namespace {

/// ASYNCIO_INSPECT=1 serves asyncio-inspect from the first loop made while no other loop serves it
/// (at the default path); a value with a '/' is the socket's path. "0" or empty: off.
void inspection_from_env(EventLoop& loop) noexcept {
  const char* env = std::getenv("ASYNCIO_INSPECT");
  if (!env || !*env || std::string_view(env) == "0") return;
  if (g_inspected_loop.load() != nullptr) return;  // another loop of this process serves it
  std::string path = std::string_view(env).find('/') != std::string_view::npos ? env : "";
  try {
    enable_inspection(loop, path);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("ASYNCIO_INSPECT: ") + e.what());
  }
}

}  // namespace

void Introspect::from_env(EventLoop& loop) noexcept {
  inspection_from_env(loop);
  if (const char* wd = std::getenv("ASYNCIO_WATCHDOG"); wd && std::atof(wd) > 0) {
    try {
      enable_watchdog(loop, std::atof(wd));
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("ASYNCIO_WATCHDOG: ") + e.what());
    }
  }
  const char* env = std::getenv("ASYNCIO_TRACE");
  if (!env || !*env) return;
  std::string path = env;
  int k = g_env_traces.fetch_add(1, std::memory_order_relaxed) + 1;
  if (k > 1) {
    // run.json -> run.2.json for the process's second loop
    std::size_t slash = path.rfind('/');
    std::size_t dot = path.rfind('.');
    std::string suffix(1, '.');  // (not "." + to_string(k): g++ 12 -O3 warns, -Wrestrict false positive)
    suffix += std::to_string(k);
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash))
      path.insert(dot, suffix);
    else
      path += suffix;
  }
  TraceOptions options;
  if (const char* ring = std::getenv("ASYNCIO_TRACE_RING"); ring && std::atoll(ring) > 0) {
    options.ring = true;
    options.max_records = static_cast<std::size_t>(std::atoll(ring));
  }
  try {
    start_trace(loop, path, options);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("ASYNCIO_TRACE: ") + e.what());
  }
}

// ---- the watchdog's beacon ---------------------------------------------------------------------

void StepBeacon::begin(TaskCore* task) noexcept {
  // Sequence lock without fences (ThreadSanitizer does not model them): the fields are stored
  // with release and loaded with acquire, so a reader that sees a field of this step also sees
  // the end() of the previous step, and its second look at seq tells it the step changed.
  constexpr auto rel = std::memory_order_release;
  std::uint64_t words[kNameWords] = {};
  if (task) {
    SourceLocation at = Introspect::resume_point(*task);
    task_id.store(task->id(), rel);
    file.store(at.file, rel);
    function.store(at.function, rel);
    line.store(at.line, rel);
    first_step.store(!Introspect::started(*task), rel);
    if (const std::string* n = task->future()->name())
      std::memcpy(words, n->data(), std::min(n->size(), sizeof words - 1));
  } else {
    task_id.store(0, rel);
    file.store(nullptr, rel);
    function.store(nullptr, rel);
    line.store(0, rel);
    first_step.store(false, rel);
  }
  for (std::size_t i = 0; i < kNameWords; ++i) name[i].store(words[i], rel);
  std::uint64_t s = seq.load(std::memory_order_relaxed);
  seq.store(s + ((s & 1) ? 2 : 1), std::memory_order_release);  // odd: a step runs
}

// ---- running ready items with diagnostics --------------------------------------------------------

void Introspect::run_ready_items(EventLoop& loop, std::size_t n) {
  LoopHooks* hooks = loop.hooks_.get();
  Tracer* tracer = hooks ? hooks->tracer.get() : nullptr;
  std::int64_t t = 0;
  if (tracer) t = tracer->begin_iteration(loop.polls_);
  for (std::size_t i = 0; i < n; ++i) {
    Runnable* r = loop.ready_.pop();
    KeepTask keep(task_of(r));
    TaskCore* task = keep.task;
    const bool first = task && !task->started_;
    if (tracer && first) tracer->first_step(*task);
    StepBeacon* beacon = hooks ? hooks->beacon : nullptr;
    if (beacon) beacon->begin(task);

    // Debug mode: what to report if the step is slow (the item may be gone after run()).
    const bool debug = loop.debug_;
    std::string what;
    SourceLocation began;
    const char* top_function = nullptr;
    std::chrono::steady_clock::time_point d0;
    if (debug) {
      if (task) {
        began = resume_point(*task);
        if (CoroPromiseBase* top = task->top_promise(); top && task->started_) top_function = top->where.function;
      } else {
        what = r->describe();
      }
      d0 = std::chrono::steady_clock::now();
    }

    r->run();

    if (hooks) {
      // A step may start or stop a diagnostic: use only what existed on both sides of it.
      if (beacon && hooks->beacon == beacon) beacon->end();
      if (tracer) {
        if (hooks->tracer.get() == tracer) {
          std::int64_t t1 = tracer->now();
          tracer->item(task, t, t1, task && task->future()->done());
          t = t1;
        } else {
          tracer = nullptr;
        }
      }
    }
    if (debug) {
      double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
      if (took >= loop.slow_callback_duration) {
        if (task)
          report_slow_step(*task, took, first, began, top_function);
        else
          log(LogLevel::warning, "Executing " + what + " took " + format_seconds(took) + " seconds");
      }
    }
  }
  if (tracer && hooks->tracer.get() == tracer) tracer->end_iteration(t, loop.polls_);
}

// ---- shared helpers ----------------------------------------------------------------------------------

std::string short_location(const char* file, std::uint32_t line) {
  if (!file || !*file) return {};
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  return std::string(file) + ":" + std::to_string(line);
}

std::string short_function(const char* function) {
  if (!function || !*function) return {};
  // __builtin_FUNCTION gives "name" already; a pretty function "R ns::name(args)" gives "name".
  std::string s(function);
  auto paren = s.find('(');
  if (paren != std::string::npos) s.resize(paren);
  auto space = s.rfind(' ');
  if (space != std::string::npos) s.erase(0, space + 1);
  return s;
}

std::string demangle(const char* mangled) {
  int status = 0;
  char* text = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && text ? text : mangled;
  std::free(text);
  return out;
}

const char* category_from_type_name(const std::string& type) {
  struct Rule {
    const char* needle;
    const char* category;
  };
  static const Rule rules[] = {
      {"Semaphore", "semaphore"}, {"Lock", "lock"},      {"Condition", "condition"},
      {"Notify", "condition"},    {"Event", "event"},    {"Queue", "queue"},
      {"Sock", "io"},             {"Stream", "io"},      {"ParkedWaiter", "io"},
      {"Transport", "io"},        {"Sleep", "sleep"},    {"Future", "future"},
      {"Executor", "thread"},     {"Thread", "thread"},  {"Barrier", "barrier"},
  };
  for (const Rule& rule : rules)
    if (type.find(rule.needle) != std::string::npos) return rule.category;
  return "other";
}

namespace {

std::string short_type(std::string type) {
  for (const char* prefix : {"asyncio::detail::", "asyncio::"})
    if (type.rfind(prefix, 0) == 0) type.erase(0, std::strlen(prefix));
  return type;
}

std::string format_delay(std::int64_t ns) {
  if (ns <= 0) return "sleep(0) (yield)";
  char buf[48];
  std::snprintf(buf, sizeof buf, "sleep %g s", static_cast<double>(ns) / 1e9);
  return buf;
}
}  // namespace

std::string describe_task_briefly(const TaskCore& task) {
  return "Task '" + task.get_name() + "' (id " + std::to_string(task.id()) + ")";
}

const char* wait_category(const Suspension* s, WaitTarget* target_out) {
  WaitTarget t = s->wait_target();
  if (target_out) *target_out = t;
  if (t.kind) {
    if (t.future && std::strcmp(t.kind, "future") == 0) {
      if (task_of(t.future)) return "task";
      if (dynamic_cast<const GatherBase*>(t.future)) return "gather";
    }
    return t.kind;
  }
  return category_from_type_name(demangle(typeid(*s).name()));
}

std::string describe_wait_kind(const char* kind, const std::type_info* type, std::int64_t value) {
  if (kind) {
    if (std::strcmp(kind, "sleep") == 0) return format_delay(value);
    if (std::strcmp(kind, "fd") == 0) return "fd " + std::to_string(value);
    if (std::strcmp(kind, "queue") == 0) return value == 0 ? "queue get" : "queue put";
    return kind;
  }
  if (!type) return "?";
  std::string name = demangle(type->name());
  return std::string(category_from_type_name(name)) + " (" + short_type(name) + ")";
}

std::string describe_wait(const Suspension* s) {
  if (!s) return {};
  WaitTarget t;
  const char* category = wait_category(s, &t);
  if (t.future) {
    if (TaskCore* task = task_of(t.future)) return describe_task_briefly(*task);
    if (std::strcmp(category, "gather") == 0) return "gather";
  }
  return describe_wait_kind(t.kind, t.kind ? nullptr : &typeid(*s), t.value);
}

}  // namespace asyncio::detail
