// SPDX-License-Identifier: MIT
// Layer 2: the event loop.
//
// One loop per thread. Each iteration (run_once) does what the seed describes: ask the poller which
// descriptors are ready (waiting no longer than the next timer), move due timers and ready I/O
// callbacks onto the ready queue, then run every item that was on the ready queue when the
// iteration began — a call_soon callback or one step of a task. A task that suspends gives control
// back here, and the loop runs the next item.
//
//   auto& loop = asyncio::get_event_loop();
//   loop.call_later(0.5, [&] { loop.stop(); });
//   loop.run_forever();
//
// The loop is not thread-safe, except call_soon_threadsafe(), which any thread may call.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include "asyncio/source_location.hpp"
#include <string>
#include <thread>
#include <vector>

#include "asyncio/detail/duration.hpp"
#include "asyncio/detail/handle_state.hpp"
#include "asyncio/detail/ref.hpp"
#include "asyncio/detail/ring_queue.hpp"
#include "asyncio/detail/runnable.hpp"
#include "asyncio/detail/timer_queue.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/poller.hpp"

namespace asyncio {

template <class T> class Coro;
template <class T> class Future;
template <class T> class Task;
class Executor;

namespace detail {
class TaskCore;
class HandleState;
class SignalHandlers;
/// The diagnostics (inspect.hpp, trace.hpp, watchdog.hpp) read private state through this
/// friend and keep their per-loop state in LoopHooks. Both belong to the diagnostics layer
/// (src/diag/introspect.hpp); the loop itself never calls them by name (see LoopObserver).
struct Introspect;
struct LoopHooks;

/// What the diagnostics layer plugs into every loop, so that the loop does not depend on it: the
/// diagnostics install one observer when the program starts (src/diag/observer.cpp), and the loop
/// calls it only when asked to: in debug mode, while a tracer or a watchdog is attached, or when a
/// loop is made with ASYNCIO_TRACE, ASYNCIO_WATCHDOG or ASYNCIO_INSPECT set. With none installed
/// the loop simply runs its ready items.
struct LoopObserver {
  /// A new loop while ASYNCIO_TRACE, ASYNCIO_WATCHDOG or ASYNCIO_INSPECT is set: attach what
  /// they ask for.
  void (*loop_created)(EventLoop& loop) noexcept;
  /// Runs the loop's next `n` ready items with the attached diagnostics watching each one.
  void (*run_ready_items)(EventLoop& loop, std::size_t n);
};
/// Installs `observer` (which must outlive every loop; null removes it) for all loops.
void set_loop_observer(const LoopObserver* observer) noexcept;

/// The loop's thread-crossing state (default executor, the anchor threads post through), made on
/// first use by threads.hpp. Defined in src/api/threads.cpp; its destructor runs first when the loop
/// is destroyed, so no thread can post into a loop that is going away.
class LoopThreads;
struct LoopThreadsSlot {
  std::atomic<LoopThreads*> ptr{nullptr};
  LoopThreadsSlot() noexcept = default;
  LoopThreadsSlot(const LoopThreadsSlot&) = delete;
  LoopThreadsSlot& operator=(const LoopThreadsSlot&) = delete;
  ~LoopThreadsSlot();
  /// Loop thread only: executor calls whose result the loop awaits, and when the latest started.
  std::uint32_t calls_in_flight = 0;
  std::int64_t last_call_ns = 0;
  /// Called by the loop before a blocking poll while calls are in flight: polls `pending` (the
  /// call_soon_threadsafe flag) for a few microseconds if a call started very recently, since a
  /// thread's result then usually arrives sooner than a sleeping thread can be woken. True if
  /// something was posted meanwhile.
  bool spin_until_posted(const std::atomic<bool>& pending) const noexcept;
};

/// An object holding descriptors on the loop's behalf (an open transport, a listening server)
/// that must let go of them when the loop closes, so that asyncio::run ending with connections
/// still open leaks neither descriptors nor memory. EventLoop::close() calls loop_closing() on each registered hook, once, after pending tasks and
/// callbacks are gone; a hook is unregistered before its call (it may destroy itself).
class CloseHook {
 public:
  virtual void loop_closing() noexcept = 0;
  CloseHook* prev_hook = nullptr;
  CloseHook* next_hook = nullptr;

 protected:
  ~CloseHook() = default;
};

/// Link in the loop's list of unfinished tasks. close() destroys what is still linked.
/// (A Runnable too, so that a task carries a single vtable pointer.)
class TaskLink : public Runnable {
 public:
  TaskLink* prev_link = nullptr;
  TaskLink* next_link = nullptr;
  /// Destroys the coroutine of a task that never finished, reporting it.
  virtual void destroy_pending() noexcept = 0;

 protected:
  ~TaskLink() = default;
};

/// A delay: seconds as a number (Python's float delays) or any std::chrono duration; converted
/// by detail::delay_ns (duration.hpp).
template <class D>
concept Delay = std::is_arithmetic_v<D> || requires(D d) { std::chrono::duration_cast<std::chrono::nanoseconds>(d); };

/// A wake-up another thread queues on a loop without allocating (EventLoop::post_remote_wake):
/// an intrusive node, usually inside an awaiter in a parked task's frame. Channel<T> wakes tasks
/// on other loops this way; call_soon_threadsafe would allocate a handle per call.
class RemoteWake {
 public:
  /// Runs on the loop's thread, during the iteration after the post, with the loop's
  /// thread-crossing lock held: it must only schedule work (TaskCore::wake), never block or throw.
  virtual void remote_wake() noexcept = 0;

 protected:
  RemoteWake() noexcept = default;
  /// Copies and moves make a fresh, unqueued node.
  RemoteWake(const RemoteWake&) noexcept {}
  ~RemoteWake() = default;

 private:
  friend class asyncio::EventLoop;
  RemoteWake* prev_wake_ = nullptr;
  RemoteWake* next_wake_ = nullptr;
  bool queued_ = false;
};

/// What a loop knows about the wake-ups other threads owe it (EventLoop::begin_remote_wait): how
/// many of its tasks wait for one, and how long such a wait has typically lasted. Before it
/// sleeps, a loop whose waits are typically short polls for the wake-up awake instead
/// (src/core/wake_spin.cpp): a sleeping thread takes the kernel tens of microseconds to wake.
struct RemoteWaitStats {
  std::uint32_t waits = 0;       ///< tasks parked until another thread wakes them
  std::int64_t typical_ns = 0;   ///< a moving average of how long the loop waited for a post
  std::int64_t waiting_since = 0;  ///< monotonic ns when the current wait began; 0: none measured
};

/// A descriptor watcher for library layers (transports): called synchronously while the loop
/// dispatches poll results, with the ready bits. It must not block and must not throw.
class FdListener {
 public:
  virtual void on_fd_ready(std::uint32_t events) noexcept = 0;

 protected:
  ~FdListener() = default;
};
}  // namespace detail

/// A scheduled callback (from call_soon, call_later, call_at, call_soon_threadsafe). Cheap to copy.
///   auto h = loop.call_later(5, [] { std::puts("late"); });
///   h.cancel();   // it will not run
class Handle {
 public:
  Handle() = default;
  /// Library-internal: wraps the scheduled callback's state.
  explicit Handle(detail::Ref<detail::HandleState> s) : s_(std::move(s)) {}
  /// Prevents the callback from running, if it has not run yet. Idempotent.
  void cancel();
  /// True once cancel() was called (Python's Handle.cancelled()).
  bool cancelled() const;
  /// True unless default-constructed.
  explicit operator bool() const noexcept { return bool(s_); }

 protected:
  /// The scheduled callback's state (shared with the loop).
  detail::Ref<detail::HandleState> s_;
};

/// A Handle for call_later/call_at; cancel() also removes the timer from the loop at once.
class TimerHandle : public Handle {
 public:
  /// As Handle's constructors.
  using Handle::Handle;
  /// The deadline on the loop's clock, in seconds (Python's TimerHandle.when()).
  double when() const;
};

/// What call_exception_handler receives (Python passes a dict with these keys).
struct ExceptionContext {
  std::string message;  ///< What happened, as Python's context["message"].
  std::exception_ptr exception;  ///< may be null
  std::string task;              ///< name of the task or future concerned, if any
  std::string location;          ///< "file:line" where it was created, if known
};

using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;

/// Options for a new loop. `debug` is also switched on by the environment variable ASYNCIO_DEBUG=1.
struct LoopOptions {
  bool debug = false;  ///< Debug mode (also ASYNCIO_DEBUG=1): slow steps and never-retrieved results are reported.
  /// Simulated time: when nothing is ready and no descriptor is watched, the clock jumps straight
  /// to the next timer. A one-hour timeout then finishes in microseconds. For tests.
  bool virtual_time = false;
  /// The readiness backend; null picks make_poller().
  /// (The explicit `{}` keeps `LoopOptions{.virtual_time = true}` free of g++'s
  /// -Wmissing-field-initializers, which fires for members without a default initializer.)
  std::shared_ptr<Poller> poller{};
};

/// Python's event loop: the ready queue, the timers, the poller and the thread-safe queue, run
/// on one thread (docs/overview.md draws one iteration). Not thread-safe except for the
/// `*_threadsafe` calls. Usually made by asyncio::run() or new_event_loop().
class EventLoop {
 public:
  EventLoop();
  /// A loop with `options` (virtual time, debug mode, a poller).
  explicit EventLoop(LoopOptions options);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  /// Closes the loop if the caller did not.
  ~EventLoop();

  // ---- scheduling callbacks -------------------------------------------------------------------
  /// Runs `fn` on a later iteration, in FIFO order with other call_soon callbacks.
  Handle call_soon(std::function<void()> fn);
  /// Runs `fn` after `delay` (seconds as a number, or a std::chrono duration). A delay of zero
  /// or less runs it on the next iteration; +inf (or anything past the clock's range) schedules
  /// a timer that never fires; NaN is a ValueError.
  template <detail::Delay D>
  TimerHandle call_later(D delay, std::function<void()> fn) {
    return call_at_ns(detail::deadline_after(now_ns(), detail::delay_ns(delay)), std::move(fn));
  }
  /// Runs `fn` when time() reaches `when` (seconds on the loop's clock); +inf never, NaN is a
  /// ValueError.
  TimerHandle call_at(double when, std::function<void()> fn) {
    return call_at_ns(detail::when_ns(when), std::move(fn));
  }
  /// The only thread-safe entry point: queues `fn` and wakes the loop if it is waiting.
  void call_soon_threadsafe(std::function<void()> fn);
  /// For library layers, thread-safe: queues `w` (not queued yet) to run on the loop's thread,
  /// waking the loop if it waits; allocates nothing. False if the loop is closed. `w` must stay
  /// alive until it ran or cancel_remote_wake(w) returned.
  bool post_remote_wake(detail::RemoteWake* w) noexcept;
  /// Thread-safe: takes `w` off the queue if it is still queued (an awaiter going away).
  void cancel_remote_wake(detail::RemoteWake* w) noexcept;
  /// For library layers, loop thread only: a task of this loop starts (begin) or stops (end)
  /// waiting for a post_remote_wake from another thread. While any does, the loop polls briefly
  /// for the post before it sleeps, if such waits have lately been short.
  void begin_remote_wait() noexcept { ++remote_waits_.waits; }
  /// See begin_remote_wait.
  void end_remote_wait() noexcept { --remote_waits_.waits; }

  /// The loop's monotonic clock in seconds (virtual with LoopOptions::virtual_time).
  double time() const noexcept { return static_cast<double>(now_ns()) / 1e9; }
  /// The same clock in nanoseconds.
  std::int64_t now_ns() const noexcept;

  // ---- running ----------------------------------------------------------------------------------
  /// Runs until stop() is called.
  void run_forever();
  /// Runs until the future, task or coroutine is done; returns its result or throws its exception.
  /// A coroutine is wrapped in a Task first. (Defined in task.hpp.)
  template <class T> T run_until_complete(Future<T> future);
  /// Runs the loop until `coro`, wrapped in a task, is done; returns its result.
  template <class T> T run_until_complete(Coro<T> coro, SourceLocation where = SourceLocation::current());
  /// Asks run_forever to return after the current iteration.
  void stop() noexcept { stopping_ = true; }
  /// Drops pending callbacks and timers, destroys tasks that never finished (reporting each through
  /// the exception handler) and releases the poller. A running loop cannot be closed.
  void close();
  /// True while run_forever or run_until_complete runs (Python's loop.is_running()).
  bool is_running() const noexcept { return running_; }
  /// True after close() (Python's loop.is_closed()).
  bool is_closed() const noexcept { return closed_; }

  // ---- futures and tasks (defined in future.hpp / task.hpp) -----------------------------------
  /// A new pending Future of this loop (Python's loop.create_future()).
  template <class T = void> Future<T> create_future();
  /// Wraps `coro` in a task and schedules its first step (Python's loop.create_task()).
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {},
                      SourceLocation where = SourceLocation::current());

  // ---- watching descriptors ----------------------------------------------------------------------
  /// Calls `fn` whenever `fd` is readable, until remove_reader(fd). Replaces an earlier reader.
  void add_reader(int fd, std::function<void()> fn);
  /// Returns true if a reader was registered.
  bool remove_reader(int fd);
  /// Calls `fn` whenever `fd` is writable (Python's loop.add_writer()).
  void add_writer(int fd, std::function<void()> fn);
  /// Stops watching `fd` for writing; false if it was not (Python's loop.remove_writer()).
  bool remove_writer(int fd);

  // ---- signals (src/core/signal_handlers.cpp) ---------------------------------------------------
  /// Python's loop.add_signal_handler: runs `callback` on this loop (with call_soon, never in the
  /// signal handler itself) each time the process receives `sig`, replacing this loop's earlier
  /// callback for it. The disposition it replaces comes back with remove_signal_handler() or
  /// when the loop closes.
  ///
  ///   loop.add_signal_handler(SIGTERM, [&] { server.close(); });
  ///
  /// Throws ValueError for a number that is not a signal, RuntimeError for SIGKILL and SIGSTOP
  /// ("sig 9 cannot be caught"), for a closed loop, and for a signal another loop of the process
  /// handles (each signal has one loop at a time; unlike Python, any thread's loop may take one).
  void add_signal_handler(int sig, std::function<void()> callback);
  /// Python's loop.remove_signal_handler: false if this loop had no handler for `sig`, else removes
  /// it and restores the disposition add_signal_handler replaced. ValueError for a bad number.
  bool remove_signal_handler(int sig);

  // ---- errors -------------------------------------------------------------------------------------
  /// Sets the handler of errors nobody else can see (Python's loop.set_exception_handler()).
  void set_exception_handler(ExceptionHandler handler) { exception_handler_ = std::move(handler); }
  /// The handler set with set_exception_handler (empty: the default).
  const ExceptionHandler& get_exception_handler() const noexcept { return exception_handler_; }
  /// Logs the context through asyncio::log at error level.
  void default_exception_handler(const ExceptionContext& context);
  /// Calls the handler set by set_exception_handler, or the default one. Never throws.
  void call_exception_handler(const ExceptionContext& context) noexcept;

  // ---- debug mode ---------------------------------------------------------------------------------
  /// True in debug mode (Python's loop.get_debug()).
  bool get_debug() const noexcept { return debug_; }
  /// Turns debug mode on or off (Python's loop.set_debug()).
  void set_debug(bool enabled) noexcept { debug_ = enabled; }
  /// In debug mode, a callback or task step that holds the loop longer than this is logged.
  double slow_callback_duration = 0.1;

  /// True if made with LoopOptions::virtual_time.
  bool uses_virtual_time() const noexcept { return virtual_time_; }
  /// Number of tasks not yet done (Python's len(all_tasks())).
  std::size_t task_count() const noexcept { return task_count_; }

  // ---- for library layers (not part of Python's surface) ---------------------------------------
  /// @cond internal
  /// Queues a runnable; the queue takes over one reference as Runnable documents.
  void schedule(detail::Runnable* r) { ready_.push(r); }
  /// Out of line on purpose: TimerQueue's code is large, and inlined into every user of sleep() it
  /// crowded hotter inlining out of those translation units (+50 instructions per stream read).
  void add_timer(detail::TimerNode* node);
  void remove_timer(detail::TimerNode* node) noexcept;
  /// Watches `fd` for `interest` (PollBits) on behalf of a transport; interest 0 removes it.
  void set_fd_listener(int fd, detail::FdListener* listener, std::uint32_t interest);
  /// The task whose step is running, or null.
  detail::TaskCore* current_task_core() const noexcept { return current_task_; }
  void set_current_task_core(detail::TaskCore* t) noexcept { current_task_ = t; }
  /// Intrusive list of unfinished tasks (for all_tasks and shutdown).
  void link_task(detail::TaskLink* t) noexcept;
  void unlink_task(detail::TaskLink* t) noexcept;
  detail::TaskLink* first_task() const noexcept { return tasks_head_; }
  /// Transports and servers that must let go of their descriptors when the loop closes (see
  /// detail::CloseHook). Registering twice is not allowed.
  void add_close_hook(detail::CloseHook* h) noexcept;
  void remove_close_hook(detail::CloseHook* h) noexcept;
  /// True if `loop` points at a loop that has not been destroyed (used by late diagnostics).
  static bool is_alive(const EventLoop* loop) noexcept;
  detail::LoopThreadsSlot& threads_slot() noexcept { return threads_slot_; }
  /// @endcond

  // ---- threads (defined in threads.hpp / src/api/threads.cpp) --------------------------------------
  /// Python's loop.run_in_executor(executor, fn, *args): runs fn(args...) on `executor` (null: the
  /// loop's default thread pool) and returns a Future<R> for its result.
  template <class F, class... Args>
  auto run_in_executor(Executor* executor, F&& fn, Args&&... args);
  /// Python's loop.set_default_executor: the executor run_in_executor(nullptr, ...) and
  /// to_thread use from now on (the previous one is not shut down).
  void set_default_executor(std::shared_ptr<Executor> executor);
  /// Python's loop.shutdown_default_executor(timeout): shuts the default executor down, waiting
  /// (without blocking the loop) for its threads; asyncio::run calls it on the way out.
  Coro<void> shutdown_default_executor(std::optional<double> timeout = std::nullopt);

 private:
  struct FdWatch {
    detail::Ref<detail::HandleState> reader, writer;
    detail::FdListener* listener = nullptr;
    std::uint32_t registered = 0;  // interest currently registered with the poller
    // polls_ when a reader, writer or listener of this fd was last removed or replaced: the
    // events of that poll were collected for the old watcher and are not dispatched.
    std::uint64_t dropped_at_poll = 0;
  };

  TimerHandle call_at_ns(std::int64_t when, std::function<void()> fn);
  /// Throws RuntimeError if the loop is closed or running, or another loop runs on this thread.
  void check_can_run() const;
  void run_once();
  /// run_once's ready items in debug mode or with diagnostics attached (through LoopObserver).
  void run_ready_items_observed(std::size_t n);
  std::int64_t poll_timeout_ns();
  void dispatch_io(std::int64_t timeout);
  void move_due_timers();
  void drain_threadsafe();
  /// Before a poll that may block: polls for another thread's post awake, for as long as waits
  /// for one have lately lasted (wake_spin.cpp). True if one came.
  bool spin_for_remote_wake(std::int64_t timeout_ns) noexcept;
  /// After that poll: learns how long the wait lasted.
  void learn_remote_wait() noexcept;
  void run_ready_item(detail::Runnable* r);
  void update_fd(int fd);
  FdWatch& watch(int fd);
  /// add_reader / add_writer: `slot` is &FdWatch::reader or &FdWatch::writer.
  void set_fd_callback(int fd, detail::Ref<detail::HandleState> FdWatch::*slot, std::function<void()> fn);
  /// remove_reader / remove_writer.
  bool clear_fd_callback(int fd, detail::Ref<detail::HandleState> FdWatch::*slot);
  // The signal pipe does not count: like call_soon_threadsafe, a signal comes from outside, and
  // the virtual clock must still jump while the loop watches for one.
  bool has_watched_fds() const noexcept { return watched_fds_ > signal_fds_; }
  void destroy_pending_tasks() noexcept;

  std::shared_ptr<Poller> poller_;
  detail::RingQueue<detail::Runnable*> ready_;
  detail::TimerQueue timers_;
  std::vector<FdWatch> fds_;
  std::size_t watched_fds_ = 0;
  std::uint64_t polls_ = 0;  // dispatch_io calls so far (see FdWatch::dropped_at_poll)
  std::vector<PollEvent> events_;

  std::mutex threadsafe_mutex_;
  std::vector<std::function<void()>> threadsafe_;
  detail::RemoteWake* wakes_head_ = nullptr;  // post_remote_wake's FIFO, under threadsafe_mutex_
  detail::RemoteWake* wakes_tail_ = nullptr;
  std::atomic<bool> threadsafe_pending_{false};
  std::atomic<bool> sleeping_{false};  // in (or about to enter) a poll that may block: wake-ups needed
  detail::RemoteWaitStats remote_waits_;

  detail::TaskCore* current_task_ = nullptr;
  detail::TaskLink* tasks_head_ = nullptr;
  detail::CloseHook* close_hooks_ = nullptr;  // see detail::CloseHook
  std::size_t task_count_ = 0;
  ExceptionHandler exception_handler_;

  std::int64_t virtual_now_ = 0;
  std::uint32_t run_since_poll_ = 0;
  bool stopping_ = false;
  bool running_ = false;
  bool closed_ = false;
  bool debug_ = false;
  bool virtual_time_ = false;
  // Diagnostics. instrumented_: run_once runs the ready items through the installed
  // detail::LoopObserver (tracing or the watchdog is on); checked once per iteration, with debug_.
  bool instrumented_ = false;
  std::shared_ptr<detail::LoopHooks> hooks_;
  std::unique_ptr<detail::SignalHandlers> signals_;  // made by the first add_signal_handler
  std::size_t signal_fds_ = 0;  // 1 while SignalHandlers watches its pipe
  friend struct detail::Introspect;
  friend class detail::SignalHandlers;
  // Last, so destroyed first: threads stop posting before anything else goes (threads.hpp).
  detail::LoopThreadsSlot threads_slot_;
};

// ---- the thread's loop (Python's event loop policy, reduced to what it does per thread) ------

/// The loop running on this thread. Throws RuntimeError("no running event loop") if none.
EventLoop& get_running_loop();
/// The running loop, else the loop set for this thread, else a new one that becomes the thread's
/// loop (the classic asyncio behaviour the seed's programs rely on).
EventLoop& get_event_loop();
/// Makes `loop` the thread's loop (null clears it).
void set_event_loop(std::shared_ptr<EventLoop> loop);
/// A new loop, not yet set for any thread.
std::shared_ptr<EventLoop> new_event_loop(LoopOptions options = {});

}  // namespace asyncio
#pragma GCC visibility pop
