// SPDX-License-Identifier: MIT
// Leaving the loop: running blocking code on threads, and entering the loop from other threads.
//
//   std::string text = co_await asyncio::to_thread(read_whole_file, "big.log");   // loop keeps going
//   auto fut = loop.run_in_executor(&pool, compress, std::move(buffer));
//
//   // on some other thread:
//   auto cf = asyncio::run_coroutine_threadsafe(fetch(url), loop);
//   Page p = cf.result(5.0);              // blocks this thread (not the loop) up to 5 s
//
// Python's names and semantics: to_thread, loop.run_in_executor, loop.set_default_executor,
// loop.shutdown_default_executor, run_coroutine_threadsafe, wrap_future, and
// concurrent.futures' Executor / ThreadPoolExecutor / Future (here ConcurrentFuture).
//
// Cancelling a task that awaits to_thread() cannot stop the thread: the task gets CancelledError
// at once, the function runs to its end, and its result is dropped. (If the call has not started
// yet, it is skipped.) A thread never touches the loop's objects directly: it stores the result in
// a thread-safe record and posts its delivery with call_soon_threadsafe; everything that belongs to
// the loop is touched on the loop's thread only.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/coro.hpp"
#include "asyncio/detail/awaitables.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

template <class T = void>
class ConcurrentFuture;

/// What fn(args...) returns when the arguments are stored (decayed) and passed as rvalues, as
/// std::thread and Python's executors do.
template <class F, class... Args>
using call_result_t = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;

namespace detail {

// ---- concurrent futures --------------------------------------------------------------------------

/// The state behind ConcurrentFuture: a mutex and a condition variable, shared by every thread
/// holding the future (Python's concurrent.futures.Future).
class ConcurrentStateBase {
 public:
  enum class Status : std::uint8_t { pending, running, cancelled, finished };

  ConcurrentStateBase() = default;
  ConcurrentStateBase(const ConcurrentStateBase&) = delete;
  ConcurrentStateBase& operator=(const ConcurrentStateBase&) = delete;
  virtual ~ConcurrentStateBase() = default;

  /// Cancels a pending future (true); false if it is running or done (true if already cancelled).
  bool cancel();
  bool cancelled() const;
  bool running() const;
  bool done() const;
  /// pending -> running (true); cancelled -> false; anything else InvalidStateError.
  bool set_running_or_notify_cancel();
  void set_exception(std::exception_ptr e);
  /// The exception (null if a result is there). Waits up to `timeout` seconds (nullopt: forever):
  /// TimeoutError if still not done, CancelledError if cancelled.
  std::exception_ptr exception(std::optional<double> timeout);
  /// Blocks until done or until the timeout; true if done.
  bool wait(std::optional<double> timeout) const;
  /// Calls `fn` on the thread that completes the future, or at once if it is done already.
  void add_done_callback(std::function<void()> fn);

 protected:
  /// Waits, then throws what result() throws instead of returning a value.
  void wait_result(std::unique_lock<std::mutex>& lock, std::optional<double> timeout);
  bool wait_locked(std::unique_lock<std::mutex>& lock, std::optional<double> timeout) const;
  /// Marks done and runs the callbacks (after unlocking).
  void finish(std::unique_lock<std::mutex>& lock, Status status);
  bool done_locked() const noexcept { return status_ == Status::cancelled || status_ == Status::finished; }

  mutable std::mutex m_;
  mutable std::condition_variable cv_;
  Status status_ = Status::pending;
  std::exception_ptr error_;

 private:
  std::vector<std::function<void()>> callbacks_;
};

template <class T>
class ConcurrentState final : public ConcurrentStateBase, public std::enable_shared_from_this<ConcurrentState<T>> {
 public:
  template <class U>
  void set_result(U&& v) {
    std::unique_lock lock(m_);
    if (done_locked()) throw InvalidStateError("invalid state: the future is already done");
    value_.emplace(std::forward<U>(v));
    finish(lock, Status::finished);
  }
  /// A copy of the value when T can be copied (several readers), else the value moved out.
  T result(std::optional<double> timeout) {
    std::unique_lock lock(m_);
    wait_result(lock, timeout);
    if constexpr (std::is_copy_constructible_v<T>)
      return *value_;
    else
      return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class ConcurrentState<void> final : public ConcurrentStateBase,
                                    public std::enable_shared_from_this<ConcurrentState<void>> {
 public:
  void set_result() {
    std::unique_lock lock(m_);
    if (done_locked()) throw InvalidStateError("invalid state: the future is already done");
    finish(lock, Status::finished);
  }
  void result(std::optional<double> timeout) {
    std::unique_lock lock(m_);
    wait_result(lock, timeout);
  }
};

// ---- work items ----------------------------------------------------------------------------------

/// A call an Executor runs on one of its threads. Reference counted atomically.
class WorkItem {
 public:
  WorkItem() noexcept = default;
  WorkItem(const WorkItem&) = delete;
  WorkItem& operator=(const WorkItem&) = delete;
  virtual ~WorkItem() = default;

  /// Runs the call, on the executor's thread; at most once.
  virtual void run() noexcept = 0;
  /// The executor drops the call without running it (shutdown with cancel_futures).
  virtual void cancel() noexcept = 0;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  std::atomic<std::uint32_t> refs_{1};
};

/// A counted reference to a WorkItem (copyable, so it fits in a std::function).
template <class W>
class WorkRef {
 public:
  static WorkRef adopt(W* p) noexcept {
    WorkRef r;
    r.p_ = p;
    return r;
  }
  WorkRef() noexcept = default;
  WorkRef(const WorkRef& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  WorkRef(WorkRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  WorkRef& operator=(WorkRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~WorkRef() {
    if (p_) p_->release();
  }
  W* operator->() const noexcept { return p_; }
  W* get() const noexcept { return p_; }

 private:
  W* p_ = nullptr;
};

}  // namespace detail

/// One call handed to an Executor: run it once with operator(), on any thread; or destroy it
/// without running it, which cancels it (its future reports CancelledError). Move-only.
class Work {
 public:
  Work() noexcept = default;
  /// Adopts one reference to `item`.
  explicit Work(detail::WorkItem* item) noexcept : item_(item) {}
  /// Moves the work item; `o` becomes empty.
  Work(Work&& o) noexcept : item_(std::exchange(o.item_, nullptr)) {}
  /// Drops this work item (unrun), then takes `o`'s.
  Work& operator=(Work&& o) noexcept {
    if (this != &o) {
      reset();
      item_ = std::exchange(o.item_, nullptr);
    }
    return *this;
  }
  ~Work() { reset(); }

  /// Runs the work item (once).
  void operator()() noexcept {
    if (detail::WorkItem* item = std::exchange(item_, nullptr)) {
      item->run();
      item->release();
    }
  }
  /// True while it holds a work item.
  explicit operator bool() const noexcept { return item_ != nullptr; }

 private:
  void reset() noexcept {
    if (detail::WorkItem* item = std::exchange(item_, nullptr)) {
      item->cancel();
      item->release();
    }
  }
  detail::WorkItem* item_ = nullptr;
};

/// A future completed by some thread, which any thread may wait on (Python's
/// concurrent.futures.Future). Copies share one state; all members are thread-safe.
template <class T>
class ConcurrentFuture {
 public:
  /// The result type.
  using value_type = T;
  /// The shared state between the loop and the worker.
  using State = detail::ConcurrentState<T>;

  /// A new pending future.
  ConcurrentFuture() : s_(std::make_shared<State>()) {}
  /// Library-internal: wraps a shared state.
  explicit ConcurrentFuture(std::shared_ptr<State> s) noexcept : s_(std::move(s)) {}

  /// Waits up to `timeout` seconds (nullopt: forever) and returns the result: rethrows the
  /// call's exception, CancelledError if cancelled, TimeoutError if still not done.
  /// Never call it with a timeout on the loop's own thread for a future the loop must complete.
  T result(std::optional<double> timeout = std::nullopt) const { return s_->result(timeout); }
  /// As result(), but returns the exception (null on success) instead of throwing it.
  std::exception_ptr exception(std::optional<double> timeout = std::nullopt) const { return s_->exception(timeout); }
  /// Cancels the future if it has not started running. For run_coroutine_threadsafe this also
  /// cancels the task in the loop (asynchronously).
  bool cancel() const { return s_->cancel(); }
  /// True if it was cancelled before it started (concurrent.futures.Future.cancelled()).
  bool cancelled() const { return s_->cancelled(); }
  /// True while the callable runs (concurrent.futures.Future.running()).
  bool running() const { return s_->running(); }
  /// True once finished or cancelled (concurrent.futures.Future.done()).
  bool done() const { return s_->done(); }
  /// Blocks until done (or the timeout passes); true if done.
  bool wait(std::optional<double> timeout = std::nullopt) const { return s_->wait(timeout); }
  /// Calls `fn(future)` on the thread that completes it (at once if it is done).
  void add_done_callback(std::function<void(ConcurrentFuture)> fn) const {
    State* s = s_.get();
    s_->add_done_callback([s, fn = std::move(fn)] { fn(ConcurrentFuture(s->shared_from_this())); });
  }

  /// The producer's side.
  bool set_running_or_notify_cancel() const { return s_->set_running_or_notify_cancel(); }
  /// Completes it with `v` (the producer's side).
  template <class U = T>
    requires(!std::is_void_v<T>)
  void set_result(U&& v) const {
    s_->set_result(std::forward<U>(v));
  }
  /// Completes a ConcurrentFuture<void> (the producer's side).
  void set_result() const
    requires std::is_void_v<T>
  {
    s_->set_result();
  }
  /// Completes it with an exception (the producer's side).
  void set_exception(std::exception_ptr e) const { s_->set_exception(std::move(e)); }

  /// Library-internal: the shared state.
  const std::shared_ptr<State>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<State> s_;
};

namespace detail {

template <class R, class Fn, class Tuple>
Stored<R> invoke_stored(Fn& fn, Tuple& args) {
  if constexpr (std::is_void_v<R>) {
    std::apply(std::move(fn), std::move(args));
    return {};
  } else {
    return std::apply(std::move(fn), std::move(args));
  }
}

/// Executor::submit's call: completes a ConcurrentState.
template <class R, class Fn, class Tuple>
class ConcurrentCall final : public WorkItem {
 public:
  ConcurrentCall(std::shared_ptr<ConcurrentState<R>> s, Fn fn, Tuple args)
      : s_(std::move(s)), fn_(std::move(fn)), args_(std::move(args)) {}
  void run() noexcept override {
    try {
      if (!s_->set_running_or_notify_cancel()) return;
    } catch (...) {
      return;  // completed by someone else
    }
    try {
      if constexpr (std::is_void_v<R>) {
        std::apply(std::move(fn_), std::move(args_));
        s_->set_result();
      } else {
        s_->set_result(std::apply(std::move(fn_), std::move(args_)));
      }
    } catch (...) {
      try {
        s_->set_exception(std::current_exception());
      } catch (...) {
      }
    }
  }
  void cancel() noexcept override {
    try {
      s_->cancel();
    } catch (...) {
    }
  }

 private:
  std::shared_ptr<ConcurrentState<R>> s_;
  Fn fn_;
  Tuple args_;
};

}  // namespace detail

/// Runs calls on other threads (Python's concurrent.futures.Executor). Implement execute() and
/// shutdown() to plug in your own; ThreadPoolExecutor is the standard one.
class Executor {
 public:
  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  virtual ~Executor() = default;

  /// Queues `work` to run once on some thread. Thread-safe. RuntimeError after shutdown().
  virtual void execute(Work work) = 0;
  /// Stops accepting work. `wait`: returns when every queued call has run and the threads have
  /// ended. `cancel_futures`: queued calls that have not started are cancelled instead of run.
  virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;

  /// Python's Executor.submit(fn, *args): fn(args...) on one of the executor's threads.
  template <class F, class... Args>
  ConcurrentFuture<call_result_t<F, Args...>> submit(F&& fn, Args&&... args) {
    using R = call_result_t<F, Args...>;
    using Call = detail::ConcurrentCall<R, std::decay_t<F>, std::tuple<std::decay_t<Args>...>>;
    ConcurrentFuture<R> future;
    execute(Work(new Call(future.state(), std::forward<F>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...))));
    return future;
  }
};

/// Python's default number of worker threads: min(32, cores + 4).
std::size_t default_max_workers() noexcept;

/// A pool of threads (Python's concurrent.futures.ThreadPoolExecutor). Threads are started on
/// demand, up to max_workers, and reused; calls run in submission order.
class ThreadPoolExecutor final : public Executor {
 public:
  /// `max_workers` 0 means default_max_workers(). Threads are named "<prefix>_<n>".
  explicit ThreadPoolExecutor(std::size_t max_workers = 0, std::string thread_name_prefix = "asyncio");
  /// shutdown(wait = true).
  ~ThreadPoolExecutor() override;

  void execute(Work work) override;
  void shutdown(bool wait = true, bool cancel_futures = false) override;
  /// How many worker threads it runs at most.
  std::size_t max_workers() const noexcept;
  /// Threads started so far.
  std::size_t thread_count() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

namespace detail {

/// How threads reach a loop: post() is call_soon_threadsafe, made safe against the loop's
/// destruction (which detaches the anchor and waits for posts in progress).
class LoopAnchor {
 public:
  explicit LoopAnchor(EventLoop* loop) noexcept : loop_(loop) {}
  /// Queues `fn` on the loop; false if the loop is closed or gone (fn is then destroyed).
  bool post(std::function<void()> fn) noexcept;
  /// The loop is going away: later posts fail; returns once posts in progress are done.
  void detach() noexcept;

 private:
  EventLoop* loop_;
  std::atomic<std::uint32_t> users_{0};
  std::atomic<bool> detached_{false};
};

/// Per-loop thread state (EventLoop::threads_slot()).
class LoopThreads {
 public:
  explicit LoopThreads(EventLoop* loop);
  ~LoopThreads();
  const std::shared_ptr<LoopAnchor>& anchor() const noexcept { return anchor_; }
  /// The default executor, made on first use; RuntimeError after shutdown_default_executor.
  std::shared_ptr<Executor> default_executor();
  void set_default_executor(std::shared_ptr<Executor> executor);
  /// Marks the default executor shut down and returns it (null if none was ever made).
  std::shared_ptr<Executor> begin_shutdown();
  bool has_default_executor() const;

 private:
  std::shared_ptr<LoopAnchor> anchor_;
  mutable std::mutex m_;
  std::shared_ptr<Executor> default_;
  bool shutdown_called_ = false;
};

/// The loop's thread state, made on first use (safe from any thread).
LoopThreads& loop_threads(EventLoop& loop);

/// asyncio::run's last step before closing: loop.shutdown_default_executor() if the loop ever
/// made one. Never throws.
void shutdown_default_executor_at_exit(EventLoop& loop) noexcept;

/// Completes a loop Future from another thread. The Future is only touched on the loop's thread,
/// through the anchor; the link does not keep it alive, and forgets it once it is done or gone.
class LoopLink : public WorkItem {
 public:
  /// Registers with `future` (on the loop's thread).
  void attach(FutureStateBase& future);
  /// From any thread: post deliver() to the loop (the outcome must be stored first).
  void post_result() noexcept;
  /// From any thread: post cancellation of the future to the loop.
  void post_cancel() noexcept;
  /// Counts the call in the loop's calls_in_flight until its future is done or gone (the loop
  /// then briefly waits awake for the result instead of asleep; see LoopThreadsSlot).
  void count_in(LoopThreadsSlot& slot) noexcept;

 protected:
  explicit LoopLink(std::shared_ptr<LoopAnchor> anchor) noexcept : anchor_(std::move(anchor)) {}
  /// Loop thread: complete `future` (pending) with the stored outcome.
  virtual void deliver(FutureStateBase& future) = 0;
  /// Loop thread: the future was cancelled (by the awaiting task being cancelled, usually).
  virtual void on_future_cancelled() noexcept {}

 private:
  static void on_future_done(void* self, FutureStateBase& future);
  static void on_future_dropped(void* self) noexcept;
  void deliver_now();
  void cancel_now();

  void uncount() noexcept;

  std::shared_ptr<LoopAnchor> anchor_;
  FutureStateBase* future_ = nullptr;  // loop thread only
  LoopThreadsSlot* counted_in_ = nullptr;  // loop thread only
};

/// run_in_executor's call: runs on the executor, completes a loop Future.
template <class R, class Fn, class Tuple>
class LoopCall final : public LoopLink {
 public:
  LoopCall(std::shared_ptr<LoopAnchor> anchor, Fn fn, Tuple args)
      : LoopLink(std::move(anchor)), fn_(std::move(fn)), args_(std::move(args)) {}

  void run() noexcept override {
    int expected = kPending;
    if (!phase_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) return;  // cancelled first
    try {
      value_.emplace(invoke_stored<R>(fn_, args_));
    } catch (...) {
      error_ = std::current_exception();
    }
    post_result();
  }
  void cancel() noexcept override { post_cancel(); }

 private:
  void deliver(FutureStateBase& future) override {
    auto& f = static_cast<FutureState<R>&>(future);
    // Moved, not copied: the call keeps no reference to the exception. The executor's thread may
    // drop the last reference to this call after the loop has caught and read the exception, and
    // it would then destroy the exception there; that is correct (exception_ptr's count is
    // atomic), but ThreadSanitizer does not see libstdc++'s uninstrumented atomics and reported a
    // race between the loop reading what() and the thread freeing the message (dns_test).
    if (error_)
      f.set_exception(std::move(error_));
    else if constexpr (std::is_void_v<R>)
      f.set_result();
    else
      f.set_result(std::move(*value_));
  }
  void on_future_cancelled() noexcept override {
    // Not started yet: skip it (Python cancels the concurrent future, which then never runs).
    int expected = kPending;
    phase_.compare_exchange_strong(expected, kCancelled, std::memory_order_acq_rel);
  }

  static constexpr int kPending = 0, kRunning = 1, kCancelled = 2;
  std::atomic<int> phase_{kPending};
  Fn fn_;
  Tuple args_;
  std::optional<Stored<R>> value_;
  std::exception_ptr error_;
};

/// wrap_future's link: a ConcurrentFuture's outcome into a loop Future, and the loop Future's
/// cancellation back into the ConcurrentFuture.
template <class T>
class WrapLink final : public LoopLink {
 public:
  WrapLink(std::shared_ptr<LoopAnchor> anchor, std::shared_ptr<ConcurrentState<T>> source)
      : LoopLink(std::move(anchor)), source_(std::move(source)) {}
  void run() noexcept override {}
  void cancel() noexcept override {}

 private:
  void deliver(FutureStateBase& future) override {
    auto& f = static_cast<FutureState<T>&>(future);
    if (source_->cancelled()) {
      f.cancel({});
      return;
    }
    try {
      if constexpr (std::is_void_v<T>) {
        source_->result(0.0);
        f.set_result();
      } else {
        f.set_result(source_->result(0.0));
      }
    } catch (...) {
      f.set_exception(std::current_exception());
    }
  }
  void on_future_cancelled() noexcept override {
    try {
      source_->cancel();
    } catch (...) {
    }
  }

  std::shared_ptr<ConcurrentState<T>> source_;
};

/// run_coroutine_threadsafe's bridge between the task in the loop and the ConcurrentFuture.
template <class T>
class CoroChain final : public std::enable_shared_from_this<CoroChain<T>> {
 public:
  CoroChain(Coro<T> coro, std::shared_ptr<ConcurrentState<T>> out, EventLoop* loop)
      : coro_(std::move(coro)), out_(std::move(out)), loop_(loop) {}
  /// If the coroutine could not run to its end (the loop closed first), the future is cancelled
  /// rather than left pending forever.
  ~CoroChain() {
    try {
      out_->cancel();
    } catch (...) {
    }
  }

  /// Loop thread: wrap the coroutine in a task.
  void start() {
    Task<T> task = loop_->create_task(std::move(coro_));
    auto* self = new std::shared_ptr<CoroChain>(this->shared_from_this());
    task.state()->add_callback(DoneCallback{&on_task_done, self, &drop});
    task_ = task.state();
    if (out_->cancelled()) task.cancel();
  }
  bool cancelled_out() const { return out_->cancelled(); }
  /// Loop thread: the ConcurrentFuture was cancelled.
  void cancel_task() {
    if (task_) task_->cancel({});
  }

 private:
  static void on_task_done(void* arg, FutureStateBase& f) {
    std::unique_ptr<std::shared_ptr<CoroChain>> self(static_cast<std::shared_ptr<CoroChain>*>(arg));
    (*self)->task_ = nullptr;
    (*self)->copy_from(static_cast<FutureState<T>&>(f));
  }
  static void drop(void* arg) noexcept {
    std::unique_ptr<std::shared_ptr<CoroChain>> self(static_cast<std::shared_ptr<CoroChain>*>(arg));
    (*self)->task_ = nullptr;
  }
  void copy_from(FutureState<T>& f) {
    if (f.cancelled()) {
      out_->cancel();
      return;
    }
    std::exception_ptr e = f.exception();  // marks it retrieved: the caller's thread gets it
    if (!out_->set_running_or_notify_cancel()) return;
    if (e)
      out_->set_exception(e);
    else if constexpr (std::is_void_v<T>)
      out_->set_result();
    else
      out_->set_result(f.take_for_await());
  }

  Coro<T> coro_;
  std::shared_ptr<ConcurrentState<T>> out_;
  EventLoop* loop_;
  FutureStateBase* task_ = nullptr;  // loop thread only: the task while it runs
};

}  // namespace detail

/// Python's loop.run_in_executor(executor, fn, *args): runs fn(args...) on `executor` (null: the
/// loop's default ThreadPoolExecutor) and returns a loop Future for the result. Arguments are
/// copied or moved into the call (std::ref passes a reference). Must be called on the loop's
/// thread. RuntimeError if the executor is shut down.
template <class F, class... Args>
Future<call_result_t<F, Args...>> run_in_executor(EventLoop& loop, Executor* executor, F&& fn, Args&&... args) {
  using R = call_result_t<F, Args...>;
  using Tuple = std::tuple<std::decay_t<Args>...>;
  using Call = detail::LoopCall<R, std::decay_t<F>, Tuple>;
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  detail::LoopThreads& threads = detail::loop_threads(loop);
  std::shared_ptr<Executor> fallback;
  if (!executor) {
    fallback = threads.default_executor();
    executor = fallback.get();
  }
  Future<R> future = loop.template create_future<R>();
  auto* call = new Call(threads.anchor(), std::forward<F>(fn), Tuple(std::forward<Args>(args)...));
  Work work(call);
  call->attach(*future.state());
  executor->execute(std::move(work));
  call->count_in(loop.threads_slot());
  return future;
}

template <class F, class... Args>
auto EventLoop::run_in_executor(Executor* executor, F&& fn, Args&&... args) {
  return asyncio::run_in_executor(*this, executor, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Python's asyncio.to_thread(fn, *args): fn(args...) on the running loop's default executor.
///   auto n = co_await asyncio::to_thread(count_lines, path);
template <class F, class... Args>
Future<call_result_t<F, Args...>> to_thread(F&& fn, Args&&... args) {
  return run_in_executor(get_running_loop(), nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Python's asyncio.wrap_future: a loop Future that follows a ConcurrentFuture. Cancelling the
/// loop Future cancels the ConcurrentFuture. Call on the loop's thread.
template <class T>
Future<T> wrap_future(const ConcurrentFuture<T>& source, EventLoop& loop) {
  detail::LoopThreads& threads = detail::loop_threads(loop);
  Future<T> future = loop.template create_future<T>();
  auto ref = detail::WorkRef<detail::WrapLink<T>>::adopt(new detail::WrapLink<T>(threads.anchor(), source.state()));
  ref->attach(*future.state());
  source.state()->add_done_callback([ref] { ref->post_result(); });
  return future;
}
template <class T>
Future<T> wrap_future(const ConcurrentFuture<T>& source) {
  return wrap_future(source, get_running_loop());
}

/// Python's asyncio.run_coroutine_threadsafe(coro, loop): from any thread, runs `coro` as a task
/// in `loop` and returns a ConcurrentFuture for its result. Cancelling that future cancels the
/// task (in the loop, asynchronously). If the loop closes before the task ends, the future is
/// cancelled. RuntimeError if the loop is closed already. The loop must outlive this call.
template <class T>
ConcurrentFuture<T> run_coroutine_threadsafe(Coro<T> coro, EventLoop& loop) {
  ConcurrentFuture<T> result;
  auto chain = std::make_shared<detail::CoroChain<T>>(std::move(coro), result.state(), &loop);
  std::shared_ptr<detail::LoopAnchor> anchor = detail::loop_threads(loop).anchor();
  std::weak_ptr<detail::CoroChain<T>> weak = chain;
  result.state()->add_done_callback([weak, anchor] {
    std::shared_ptr<detail::CoroChain<T>> c = weak.lock();
    if (!c || !c->cancelled_out()) return;  // finished normally, or the task is over
    anchor->post([c] { c->cancel_task(); });
  });
  if (!anchor->post([chain] { chain->start(); })) throw RuntimeError("Event loop is closed");
  return result;
}
/// run_coroutine_threadsafe of a coroutine callable (a capturing coroutine lambda): the callable
/// is moved into the coroutine's frame, so its captures live until the coroutine ends.
///   auto f = asyncio::run_coroutine_threadsafe([n]() -> asyncio::Coro<int> { co_return n; }, loop);
template <class F>
  requires detail::CoroutineCallable<std::decay_t<F>>
auto run_coroutine_threadsafe(F&& fn, EventLoop& loop) {
  return run_coroutine_threadsafe(make_coro(std::forward<F>(fn)), loop);
}

}  // namespace asyncio
#pragma GCC visibility pop
