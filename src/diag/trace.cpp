// SPDX-License-Identifier: MIT
// Timeline traces (trace.hpp): recording (cheap, per step) and writing the trace-event JSON.
#include "asyncio/trace.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>

#include "diag/introspect.hpp"
#include "diag/json.hpp"
#include "diag/tracer.hpp"

namespace asyncio {
namespace detail {

namespace {

/// An invariant TSC ticks at a constant rate whatever the CPU's power state: usable as a clock.
bool invariant_tsc() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool ok = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      return line.find(" constant_tsc") != std::string::npos && line.find(" nonstop_tsc") != std::string::npos;
    }
    return false;
  }();
  return ok;
#else
  return false;
#endif
}

/// Remembers, per dynamic type, whether a future is a gather (one dynamic_cast per type).
class GatherTypes {
 public:
  bool is_gather(const FutureStateBase* f) noexcept {
    const std::type_info* type = &typeid(*f);
    for (std::size_t i = 0; i < n_; ++i)
      if (types_[i] == type) return gather_[i];
    bool g = dynamic_cast<const GatherBase*>(f) != nullptr;
    if (n_ < kEntries) {
      types_[n_] = type;
      gather_[n_++] = g;
    }
    return g;
  }

 private:
  static constexpr std::size_t kEntries = 16;
  const std::type_info* types_[kEntries] = {};
  bool gather_[kEntries] = {};
  std::size_t n_ = 0;
};
constinit thread_local GatherTypes t_gather_types;

std::string quoted(const std::string& s) { return json_quoted(s); }

std::string where_of(const char* file, std::uint32_t line, const char* function) {
  std::string text = short_location(file, line);
  std::string fn = short_function(function);
  if (!fn.empty()) text += " in " + fn + "()";
  return text;
}

}  // namespace

template <class T>
ChunkedLog<T>::~ChunkedLog() {
  for (void* c : chunks_) std::free(c);
}

template <class T>
void ChunkedLog<T>::advance() {
  if (ring_chunks_ && chunks_.size() == ring_chunks_) {
    current_ = (current_ + 1) % chunks_.size();
    wrapped_ = true;
  } else {
    void* chunk = std::aligned_alloc(kChunkBytes, kChunkBytes);
    if (!chunk) throw std::bad_alloc();
    ::madvise(chunk, kChunkBytes, MADV_HUGEPAGE);  // a hint: one fault per 2 MiB where allowed
    try {
      chunks_.push_back(chunk);
    } catch (...) {
      std::free(chunk);
      throw;
    }
    current_ = chunks_.size() - 1;
  }
  next_ = static_cast<T*>(chunks_[current_]);
  end_ = next_ + kPerChunk;
}

template class ChunkedLog<Tracer::Record>;
template class ChunkedLog<Tracer::TaskMeta>;

Tracer::Tracer(EventLoop& loop, std::string path, int loop_index, std::size_t max_records, bool ring)
    : loop_(&loop),
      path_(std::move(path)),
      loop_index_(loop_index),
      max_records_(max_records),
      ring_(ring),
      use_tsc_(invariant_tsc()) {
  if (ring_) {
    // A flight recorder reuses all its memory: task descriptions go round too (write() asks the
    // loop about live tasks whose description went).
    records_.set_ring(max_records_);
    tasks_.set_ring(max_records_);
  }
  // Tasks that exist already are named now; later ones at their first step.
  for (TaskLink* l = loop.first_task(); l; l = l->next_link) {
    auto* t = static_cast<TaskCore*>(l);
    first_step(*t);
    CoroPromiseBase* top = t->top_promise();
    pending_meta_->function = top && Introspect::started(*t) ? top->where.function : nullptr;
    pending_meta_ = nullptr;
  }
  start_ns_ = steady_ns();
  start_ticks_ = now();
}

void Tracer::first_step(TaskCore& task) {
  TaskMeta& m = tasks_.push();
  m.id = task.id();
  m.created_file = task.created_at().file;
  m.created_line = task.created_at().line;
  m.function = nullptr;
  m.name = kNoName;
  if (const std::string* name = task.future()->name()) {
    m.name = static_cast<std::uint32_t>(names_.size());
    names_.push_back(*name);
  }
  pending_meta_ = &m;
}

void Tracer::item(TaskCore* task, std::int64_t t0, std::int64_t t1, bool finished) {
  if (pending_meta_) {
    // The top coroutine's function is known once it has awaited something.
    if (task && !finished && pending_meta_->id == task->id())
      if (CoroPromiseBase* top = task->top_promise()) pending_meta_->function = top->where.function;
    pending_meta_ = nullptr;
  }
  if (!ring_ && records_.size() >= max_records_) {
    ++dropped_;
    return;
  }
  Record& rec = records_.push();
  rec.t0 = t0;
  rec.t1 = t1;
  rec.flags = iteration_start_ ? kIterationStart : 0;
  iteration_start_ = false;
  if (!task) {
    rec.task = 0;
    rec.flags |= kCallback;
    return;
  }
  rec.task = task->id();
  if (finished) {
    rec.flags |= kFinished;
    return;
  }
  Suspension* w = Introspect::waiter(*task);
  if (!w) return;  // ready again without parking
  rec.flags |= kParked;
  if (CoroPromiseBase* p = Introspect::innermost(*task)) {
    rec.file = p->where.file;
    rec.function = p->where.function;
    rec.line = p->where.line;
  } else {
    rec.file = rec.function = nullptr;
    rec.line = 0;
  }
  WaitTarget target = w->wait_target();
  rec.wait = target.kind;
  rec.value = target.value;
  if (!target.kind) {
    rec.wait = &typeid(*w);
    rec.flags |= kWaitIsType;
  }
  if (target.future) {
    if (TaskCore* other = task_of(target.future)) {
      rec.value = static_cast<std::int64_t>(other->id());
      rec.flags |= kTargetTask;
    } else if (t_gather_types.is_gather(target.future)) {
      rec.wait = "gather";
    }
  }
}

bool Tracer::write(std::string& error) {
  std::int64_t end_ticks = now();
  std::int64_t end_ns = steady_ns();
  double ns_per_tick = 1.0;
  if (use_tsc_) {
    // Calibrate the TSC against steady_clock over the whole trace (at least 20 ms of it).
    if (end_ns - start_ns_ < 20'000'000) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(20'000'000 - (end_ns - start_ns_)));
      end_ticks = now();
      end_ns = steady_ns();
    }
    if (end_ticks > start_ticks_) ns_per_tick = double(end_ns - start_ns_) / double(end_ticks - start_ticks_);
  }
  auto us = [&](std::int64_t ticks) { return double(ticks - start_ticks_) * ns_per_tick / 1000.0; };

  std::FILE* out = std::fopen(path_.c_str(), "w");
  if (!out) {
    error = path_ + ": " + std::strerror(errno);
    return false;
  }
  const long pid = static_cast<long>(::getpid());
  const std::string pid_s = std::to_string(pid);
  constexpr int kLoopTid = 1;  // tasks: id + 1 (ids start at 1)

  std::unordered_map<std::uint64_t, const TaskMeta*> meta;
  tasks_.for_each([&](const TaskMeta& m) { meta.emplace(m.id, &m); });
  std::vector<TaskMeta> live;  // tasks of a ring whose description was overwritten
  if (ring_ && EventLoop::is_alive(loop_)) {
    std::size_t count = 0;
    for (TaskLink* l = loop_->first_task(); l; l = l->next_link) ++count;
    live.reserve(count);
    for (TaskLink* l = loop_->first_task(); l; l = l->next_link) {
      auto* t = static_cast<TaskCore*>(l);
      if (meta.count(t->id())) continue;
      const std::string* name = t->future()->name();
      CoroPromiseBase* top = t->top_promise();
      live.push_back(TaskMeta{t->id(), t->created_at().file, top && Introspect::started(*t) ? top->where.function : nullptr,
                              t->created_at().line, name ? static_cast<std::uint32_t>(names_.size()) : kNoName});
      if (name) names_.push_back(*name);
    }
    for (const TaskMeta& m : live) meta.emplace(m.id, &m);
  }
  auto task_name = [&](std::uint64_t id) {
    auto it = meta.find(id);
    if (it != meta.end() && it->second->name != kNoName) return names_[it->second->name];
    return "Task-" + std::to_string(id);
  };

  std::string buf;
  buf.reserve(1 << 20);
  bool first_event = true;
  auto flush_if_big = [&] {
    if (buf.size() > (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), out);
      buf.clear();
    }
  };
  auto begin_event = [&] {
    buf += first_event ? "\n" : ",\n";
    first_event = false;
  };
  char num[64];
  auto slice = [&](const char* ph, const std::string& name, const char* cat, std::uint64_t tid, std::int64_t t0,
                   std::int64_t t1, const std::string& args) {
    begin_event();
    buf += "{\"name\":";
    buf += quoted(name);
    buf += ",\"cat\":\"";
    buf += cat;
    buf += "\",\"ph\":\"";
    buf += ph;
    std::snprintf(num, sizeof num, "\",\"ts\":%.3f", us(t0));
    buf += num;
    if (ph[0] == 'X') {
      std::snprintf(num, sizeof num, ",\"dur\":%.3f", us(t1) - us(t0));
      buf += num;
    } else {
      buf += ",\"s\":\"t\"";
    }
    buf += ",\"pid\":" + pid_s + ",\"tid\":" + std::to_string(tid);
    if (!args.empty()) buf += ",\"args\":{" + args + "}";
    buf += "}";
    flush_if_big();
  };
  auto metadata = [&](const char* what, std::uint64_t tid, const std::string& arg) {
    begin_event();
    buf += "{\"name\":\"";
    buf += what;
    buf += "\",\"ph\":\"M\",\"pid\":" + pid_s + ",\"tid\":" + std::to_string(tid) + ",\"args\":{" + arg + "}}";
  };

  buf += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"asyncio for C++ (asyncio/trace.hpp)\"";
  buf += ",\"steps_dropped\":" + std::to_string(dropped_);
  if (ring_) buf += ",\"ring\":true,\"steps_overwritten\":" + std::to_string(records_.pushed() - records_.size());
  buf += "},\"traceEvents\":[";
  std::string process = "asyncio event loop";
  if (loop_index_ > 1) process += " #" + std::to_string(loop_index_);
  metadata("process_name", kLoopTid, "\"name\":" + quoted(process + " (pid " + pid_s + ")"));
  metadata("thread_name", kLoopTid, "\"name\":\"event loop\"");
  metadata("thread_sort_index", kLoopTid, "\"sort_index\":0");

  // Which tasks appear, in order of first appearance; name their tracks.
  std::unordered_map<std::uint64_t, bool> seen;
  records_.for_each([&](const Record& r) {
    if ((r.flags & kCallback) || seen.count(r.task)) return;
    seen.emplace(r.task, true);
    std::string label = task_name(r.task);
    if (label.rfind("Task-", 0) != 0) label = "Task " + std::to_string(r.task) + " '" + label + "'";
    auto it = meta.find(r.task);
    if (it != meta.end()) {
      std::string fn = short_function(it->second->function);
      if (!fn.empty()) label += ": " + fn + "()";
    }
    metadata("thread_name", r.task + 1, "\"name\":" + quoted(label));
    metadata("thread_sort_index", r.task + 1, "\"sort_index\":" + std::to_string(r.task));
  });

  // Steps, waits between them, iterations and the loop's waiting between iterations.
  struct Pending {
    std::int64_t since;
    std::string label, kind, parked_at;
  };
  std::unordered_map<std::uint64_t, Pending> waiting;
  // Iterations: from the start of an item flagged kIterationStart to the end of the item before
  // the next one; between two iterations the loop polls (and moves due timers).
  std::int64_t iteration_start = -1, iteration_end = -1, last_iteration_end = -1;
  std::size_t iteration_items = 0;
  auto end_iteration = [&] {
    if (iteration_start < 0) return;
    if (last_iteration_end >= 0 && us(iteration_start) - us(last_iteration_end) > 10.0)
      slice("X", "poll", "loop", kLoopTid, last_iteration_end, iteration_start,
            "\"note\":\"waiting for I/O or the next timer, then moving due timers\"");
    slice("X", "iteration", "loop", kLoopTid, iteration_start, iteration_end,
          "\"ready items\":" + std::to_string(iteration_items));
    last_iteration_end = iteration_end;
    iteration_start = -1;
  };
  records_.for_each([&](const Record& r) {
    if (r.flags & kIterationStart) {
      end_iteration();
      iteration_start = r.t0;
      iteration_items = 0;
    }
    if (iteration_start >= 0) {
      iteration_end = r.t1;
      ++iteration_items;
    }
    if (r.flags & kCallback) {
      slice("X", "callback", "callback", kLoopTid, r.t0, r.t1, {});
      return;
    }
    const std::uint64_t tid = r.task + 1;
    std::string resumed;
    if (auto it = waiting.find(r.task); it != waiting.end()) {
      const Pending& p = it->second;
      slice("X", p.label, "wait", tid, p.since, r.t0,
            "\"kind\":" + quoted(p.kind) + ",\"parked at\":" + quoted(p.parked_at));
      resumed = p.parked_at;
      waiting.erase(it);
    } else if (auto m = meta.find(r.task); m != meta.end()) {
      resumed = "start (created at " + short_location(m->second->created_file, m->second->created_line) + ")";
    }
    std::string args = "\"resumed at\":" + quoted(resumed);
    const bool parked = r.flags & kParked;
    std::string parked_at = parked ? where_of(r.file, r.line, r.function) : std::string();
    if (r.flags & kFinished)
      args += ",\"ended\":\"the task finished\"";
    else if (parked)
      args += ",\"parked at\":" + quoted(parked_at);
    slice("X", "run", "step", tid, r.t0, r.t1, args);
    slice("X", task_name(r.task), "step", kLoopTid, r.t0, r.t1, {});
    if (r.flags & kFinished) {
      slice("i", "done", "step", tid, r.t1, r.t1, {});
    } else if (parked) {
      Pending p;
      p.since = r.t1;
      p.parked_at = parked_at;
      const char* kind = (r.flags & kWaitIsType) ? nullptr : static_cast<const char*>(r.wait);
      const std::type_info* type = (r.flags & kWaitIsType) ? static_cast<const std::type_info*>(r.wait) : nullptr;
      if (r.flags & kTargetTask) {
        p.kind = "task";
        p.label = "await " + task_name(static_cast<std::uint64_t>(r.value));
      } else if (kind && std::strcmp(kind, "future") == 0) {
        p.kind = "future";
        p.label = "await future";
      } else if (kind && std::strcmp(kind, "gather") == 0) {
        p.kind = "gather";
        p.label = "await gather";
      } else {
        p.kind = kind ? kind : (type ? category_from_type_name(demangle(type->name())) : "other");
        p.label = describe_wait_kind(kind, type, r.value);
      }
      waiting[r.task] = std::move(p);
    }
  });
  end_iteration();
  for (auto& [task, p] : waiting)
    slice("X", p.label, "wait", task + 1, p.since, end_ticks,
          "\"kind\":" + quoted(p.kind) + ",\"parked at\":" + quoted(p.parked_at) + ",\"note\":\"still waiting when the trace ended\"");
  if (dropped_ > 0)
    slice("i", "trace full: " + std::to_string(dropped_) + " steps not recorded", "loop", kLoopTid, end_ticks,
          end_ticks, {});
  buf += "\n]}\n";
  std::fwrite(buf.data(), 1, buf.size(), out);
  bool ok = std::ferror(out) == 0;
  if (std::fclose(out) != 0) ok = false;
  if (!ok) error = path_ + ": write failed";
  return ok;
}

void LoopHooks::Deleter::operator()(Tracer* p) const noexcept { delete p; }

}  // namespace detail

void start_trace(EventLoop& loop, std::string path, TraceOptions options) {
  detail::LoopHooks& h = detail::Introspect::hooks(loop);
  if (h.tracer) throw RuntimeError("the loop is already being traced (to " + h.tracer->path() + ")");
  h.tracer.reset(new detail::Tracer(loop, std::move(path), h.loop_index, options.max_records, options.ring));
  detail::Introspect::update_instrumented(loop);
}

bool stop_trace(EventLoop& loop) {
  detail::LoopHooks* h = detail::Introspect::find_hooks(loop);
  if (!h || !h->tracer) return false;
  std::unique_ptr<detail::Tracer, detail::LoopHooks::Deleter> tracer = std::move(h->tracer);
  detail::Introspect::update_instrumented(loop);
  std::string error;
  if (!tracer->write(error)) throw RuntimeError("cannot write the trace: " + error);
  return true;
}

bool is_tracing(const EventLoop& loop) noexcept {
  detail::LoopHooks* h = detail::Introspect::find_hooks(loop);
  return h && h->tracer;
}

}  // namespace asyncio
