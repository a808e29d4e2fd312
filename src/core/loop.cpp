// SPDX-License-Identifier: MIT
#include "asyncio/loop.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "asyncio/log.hpp"
#include "core/signal_handlers.hpp"
#include "os/sigpipe_run.hpp"

namespace asyncio {

namespace {

// With work always ready the loop would otherwise never look at descriptors. It polls (without
// blocking) at least once per this many ready items, which keeps I/O fair without paying a system
// call for every yield.
constexpr std::uint32_t kPollEvery = 64;
constexpr std::size_t kMaxEventsPerPoll = 256;
// The longest the loop sleeps in one poll (Python's MAXIMUM_SELECT_TIMEOUT): a far deadline is
// reached in steps, and a clock the system adjusted is looked at again at least daily.
constexpr std::int64_t kLongestPollNs = std::int64_t{24} * 3600 * 1'000'000'000;

thread_local EventLoop* t_running_loop = nullptr;

// The diagnostics layer's observer (see detail::LoopObserver), installed once at start-up.
std::atomic<const detail::LoopObserver*> g_observer{nullptr};
const detail::LoopObserver* installed_observer() noexcept { return g_observer.load(std::memory_order_acquire); }
thread_local std::shared_ptr<EventLoop> t_thread_loop;

std::mutex live_loops_mutex;
std::unordered_set<const EventLoop*>& live_loops() {
  static std::unordered_set<const EventLoop*> loops;
  return loops;
}

std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool env_debug() {
  const char* v = std::getenv("ASYNCIO_DEBUG");
  return v && *v && std::strcmp(v, "0") != 0;
}

// The heap owns one reference on a timer handle; expiry hands it to the ready queue.
void expire_timer_handle(detail::TimerNode* node) {
  auto* h = static_cast<detail::HandleTimerNode*>(node)->owner;
  h->loop()->schedule(h);
}

}  // namespace

// ---- Handle --------------------------------------------------------------------------------------

void detail::HandleState::run() {
  if (!cancelled_) {
    running_ = true;
    try {
      fn_();
    } catch (...) {
      loop_->call_exception_handler({"Exception in callback", std::current_exception(), {}, {}});
    }
    running_ = false;
    // Cancelled by its own callback (a reader calling remove_reader, a callback cancelling its
    // handle): cancel() left the closure alive while it ran; release its captures now.
    if (cancelled_) fn_ = nullptr;
  }
  release();
}

void detail::HandleState::cancel() noexcept {
  if (cancelled_) return;
  cancelled_ = true;
  // Destroying the closure while it executes would free the captures it is still using; run()
  // releases it when the call returns instead.
  if (!running_) fn_ = nullptr;
  if (timer.scheduled()) {
    loop_->remove_timer(&timer);
    release();  // the heap's reference
  }
}

void Handle::cancel() {
  if (s_) s_->cancel();
}
bool Handle::cancelled() const { return s_ && s_->cancelled(); }
double TimerHandle::when() const { return s_ ? static_cast<double>(s_->timer.when) / 1e9 : 0.0; }

// ---- construction --------------------------------------------------------------------------------

EventLoop::EventLoop() : EventLoop(LoopOptions{}) {}

EventLoop::EventLoop(LoopOptions options)
    : poller_(options.poller ? std::move(options.poller) : std::shared_ptr<Poller>(make_poller())),
      events_(kMaxEventsPerPoll),
      debug_(options.debug || env_debug()),
      virtual_time_(options.virtual_time) {
  // ASYNCIO_TRACE=path.json, ASYNCIO_WATCHDOG=seconds, ASYNCIO_INSPECT=1 (trace.hpp, watchdog.hpp,
  // inspect.hpp): the diagnostics layer attaches what they ask for.
  if (std::getenv("ASYNCIO_TRACE") || std::getenv("ASYNCIO_WATCHDOG") || std::getenv("ASYNCIO_INSPECT")) {
    if (const detail::LoopObserver* observer = installed_observer()) observer->loop_created(*this);
  }
  std::lock_guard lock(live_loops_mutex);
  live_loops().insert(this);
}

EventLoop::~EventLoop() {
  if (!closed_ && !running_) close();
  std::lock_guard lock(live_loops_mutex);
  live_loops().erase(this);
}

bool EventLoop::is_alive(const EventLoop* loop) noexcept {
  std::lock_guard lock(live_loops_mutex);
  return live_loops().count(loop) != 0;
}

std::int64_t EventLoop::now_ns() const noexcept {
  return virtual_time_ ? virtual_now_ : monotonic_ns();
}

// ---- scheduling ----------------------------------------------------------------------------------

Handle EventLoop::call_soon(std::function<void()> fn) {
  if (closed_) throw RuntimeError("Event loop is closed");
  auto* h = new detail::HandleState(this, std::move(fn));
  h->add_ref();  // the ready queue's reference
  schedule(h);
  return Handle(detail::Ref<detail::HandleState>::adopt(h));
}

TimerHandle EventLoop::call_at_ns(std::int64_t when, std::function<void()> fn) {
  if (closed_) throw RuntimeError("Event loop is closed");
  auto* h = new detail::HandleState(this, std::move(fn));
  h->timer.when = when;
  h->timer.on_expire = expire_timer_handle;
  h->add_ref();  // the heap's reference
  add_timer(&h->timer);
  return TimerHandle(detail::Ref<detail::HandleState>::adopt(h));
}

void EventLoop::call_soon_threadsafe(std::function<void()> fn) {
  {
    std::lock_guard lock(threadsafe_mutex_);
    if (closed_) throw RuntimeError("Event loop is closed");
    threadsafe_.push_back(std::move(fn));
  }
  // Only the first producer since the loop last drained pays for the wake-up write, and only if
  // the loop sleeps in the poller: a loop that is running (or spinning for a thread's result)
  // sees the flag before it next blocks (dispatch_io checks it after announcing the sleep; both
  // sides are sequentially consistent, so one of them always sees the other).
  if (!threadsafe_pending_.exchange(true, std::memory_order_seq_cst) && sleeping_.load(std::memory_order_seq_cst))
    poller_->wakeup();
}

bool EventLoop::post_remote_wake(detail::RemoteWake* w) noexcept {
  // All of it under the lock, the wake-up write included: the task this wakes may run, finish
  // and let its loop close and be destroyed as soon as the node is visible, and close() takes
  // this lock last, so the loop cannot go away while a poster still touches it.
  std::lock_guard lock(threadsafe_mutex_);
  if (closed_) return false;
  if (w->queued_) return true;
  w->queued_ = true;
  w->prev_wake_ = wakes_tail_;
  w->next_wake_ = nullptr;
  (wakes_tail_ ? wakes_tail_->next_wake_ : wakes_head_) = w;
  wakes_tail_ = w;
  // The same hand-shake as call_soon_threadsafe's.
  if (!threadsafe_pending_.exchange(true, std::memory_order_seq_cst) && sleeping_.load(std::memory_order_seq_cst))
    poller_->wakeup();
  return true;
}

void EventLoop::cancel_remote_wake(detail::RemoteWake* w) noexcept {
  std::lock_guard lock(threadsafe_mutex_);
  if (!w->queued_) return;
  (w->prev_wake_ ? w->prev_wake_->next_wake_ : wakes_head_) = w->next_wake_;
  (w->next_wake_ ? w->next_wake_->prev_wake_ : wakes_tail_) = w->prev_wake_;
  w->queued_ = false;
}

void EventLoop::drain_threadsafe() {
  std::vector<std::function<void()>> batch;
  threadsafe_pending_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(threadsafe_mutex_);
    batch.swap(threadsafe_);
    // Run under the lock: a wake only schedules, and a node's owner unqueues it under this lock
    // before it goes away, so none can vanish half-way.
    while (detail::RemoteWake* w = wakes_head_) {
      wakes_head_ = w->next_wake_;
      w->queued_ = false;
      w->remote_wake();
    }
    wakes_tail_ = nullptr;
  }
  for (auto& fn : batch) {
    auto* h = new detail::HandleState(this, std::move(fn));
    schedule(h);  // adopts the creation reference
  }
}

// ---- the iteration -------------------------------------------------------------------------------

std::int64_t EventLoop::poll_timeout_ns() {
  if (!ready_.empty() || stopping_) return 0;
  if (timers_.empty()) return -1;
  std::int64_t deadline = timers_.next_deadline();
  if (deadline == detail::kNeverNs) return kLongestPollNs;  // only timers that never fire
  std::int64_t delay = deadline - now_ns();
  return delay <= 0 ? 0 : delay < kLongestPollNs ? delay : kLongestPollNs;
}

void EventLoop::dispatch_io(std::int64_t timeout) {
  if (virtual_time_ && timeout > 0) {
    if (!has_watched_fds()) {
      // Nothing can happen before the next timer except a thread's call_soon_threadsafe, which
      // the flag check at the top of the iteration catches. Jump.
      // (Never to a deadline that means never: those timers wait, like the real clock's.)
      if (std::int64_t next = timers_.next_deadline(); next != detail::kNeverNs) {
        virtual_now_ = std::max(virtual_now_, next);
        timeout = 0;
      }
    }
  }
  const bool may_sleep = timeout != 0;
  if (may_sleep) {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (threadsafe_pending_.load(std::memory_order_seq_cst)) timeout = 0;  // posted meanwhile: no sleep
  }
  std::int64_t started = virtual_time_ && timeout != 0 ? monotonic_ns() : 0;
  std::size_t n = poller_->poll(events_, std::chrono::nanoseconds(timeout));
  if (may_sleep) sleeping_.store(false, std::memory_order_relaxed);
  if (started) virtual_now_ += monotonic_ns() - started;
  ++polls_;
  for (std::size_t i = 0; i < n; ++i) {
    const PollEvent& ev = events_[i];
    if (ev.fd < 0 || static_cast<std::size_t>(ev.fd) >= fds_.size()) continue;
    FdWatch& w = fds_[ev.fd];
    // An earlier callback of this batch removed or replaced the watcher this event was collected
    // for (a transport closed by another's callback, its fd number maybe reused already): the
    // event is not for whoever watches the fd now. Level-triggered polling reports the fd again
    // next time if it is still ready, so skipping loses nothing.
    if (w.dropped_at_poll == polls_) continue;
    if (w.listener) {
      w.listener->on_fd_ready(ev.events);
      continue;
    }
    if ((ev.events & poll_readable) && w.reader && !w.reader->cancelled()) {
      w.reader->add_ref();
      schedule(w.reader.get());
    }
    if ((ev.events & poll_writable) && w.writer && !w.writer->cancelled()) {
      w.writer->add_ref();
      schedule(w.writer.get());
    }
  }
}

void EventLoop::add_timer(detail::TimerNode* node) {
  if (timers_.empty()) timers_.advance(now_ns());  // the queue's wheel starts at the clock
  timers_.push(node);
}

void EventLoop::remove_timer(detail::TimerNode* node) noexcept {
  if (node->scheduled()) timers_.remove(node);
}

void EventLoop::move_due_timers() {
  std::int64_t now = now_ns();
  timers_.advance(now);
  while (detail::TimerNode* node = timers_.pop_due(now)) node->on_expire(node);
}

void EventLoop::run_once() {
  if (threadsafe_pending_.load(std::memory_order_acquire)) drain_threadsafe();
  std::int64_t timeout = poll_timeout_ns();
  bool must_poll = timeout != 0 || (has_watched_fds() && run_since_poll_ >= kPollEvery);
  if (must_poll) {
    // A post from another thread due any microsecond: wait for it awake rather than asleep. An
    // executor call's result (threads.hpp) if a call started just now; a Channel's wake-up
    // (wake_spin.cpp) while such waits have lately been short.
    bool posted = false;
    bool measure = false;
    if (timeout != 0 && threads_slot_.calls_in_flight != 0) posted = threads_slot_.spin_until_posted(threadsafe_pending_);
    if (timeout != 0 && !posted && remote_waits_.waits != 0 && !virtual_time_) {
      posted = spin_for_remote_wake(timeout);
      measure = !posted;
    }
    // A post caught awake is ready work: the poll it saves (a system call) is made only when
    // descriptors have waited kPollEvery items, as when the ready queue is busy.
    if (!posted || (watched_fds_ != 0 && run_since_poll_ >= kPollEvery)) {
      dispatch_io(posted ? 0 : timeout);
      if (measure) learn_remote_wait();
      run_since_poll_ = 0;
    }
    if (threadsafe_pending_.load(std::memory_order_acquire)) drain_threadsafe();
  }
  if (!timers_.empty()) move_due_timers();

  // Only what is ready now runs in this iteration; what these items schedule waits for the next.
  std::size_t n = ready_.size();
  run_since_poll_ += static_cast<std::uint32_t>(n);
  if (debug_ || instrumented_) {
    run_ready_items_observed(n);
  } else {
    for (std::size_t i = 0; i < n; ++i) ready_.pop()->run();
  }
}

void EventLoop::run_ready_items_observed(std::size_t n) {
  // Debug mode's slow-step report, tracing, the watchdog: the diagnostics layer (src/diag).
  if (const detail::LoopObserver* observer = installed_observer()) {
    observer->run_ready_items(*this, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) ready_.pop()->run();
  }
}

void EventLoop::check_can_run() const {
  if (closed_) throw RuntimeError("Event loop is closed");
  if (running_) throw RuntimeError("This event loop is already running");
  if (t_running_loop) throw RuntimeError("Cannot run the event loop while another loop is running");
}

void EventLoop::run_forever() {
  check_can_run();
  running_ = true;
  t_running_loop = this;
  struct Reset {
    EventLoop* self;
    ~Reset() {
      self->stopping_ = false;
      self->running_ = false;
      t_running_loop = nullptr;
    }
  } reset{this};
  // Writes to a pipe or socket whose reader has gone fail with EPIPE while the loop runs, as in
  // Python, for the cost of two system calls per run instead of two per write.
  detail::os::SigpipeBlockedWhileRunning quiet_pipes;
  // At least one iteration: a stop() requested before run_forever() lets the loop run what is
  // already ready once and then return, as Python's loop does (a `while (!stopping_)` loop
  // returned at once without running anything).
  do {
    run_once();
  } while (!stopping_);
}

// ---- closing -------------------------------------------------------------------------------------

void EventLoop::close() {
  if (running_) throw RuntimeError("Cannot close a running event loop");
  if (closed_) return;
  destroy_pending_tasks();
  while (!ready_.empty()) ready_.pop()->discard();
  // Transports and servers still open give their descriptors back
  // (see detail::CloseHook); whatever they schedule meanwhile is dropped like the rest.
  while (detail::CloseHook* h = close_hooks_) {
    remove_close_hook(h);
    h->loop_closing();
  }
  while (!ready_.empty()) ready_.pop()->discard();
  // Timers left now belong to call_later handles (task timers went with their frames).
  while (!timers_.empty()) {
    detail::TimerNode* node = timers_.pop();
    if (node->on_expire == expire_timer_handle) {
      static_cast<detail::HandleTimerNode*>(node)->owner->release();
    }
  }
  for (std::size_t fd = 0; fd < fds_.size(); ++fd) {
    if (fds_[fd].registered) poller_->remove(static_cast<int>(fd));
  }
  fds_.clear();
  watched_fds_ = 0;
  {
    std::lock_guard lock(threadsafe_mutex_);
    closed_ = true;
    threadsafe_.clear();
    while (detail::RemoteWake* w = wakes_head_) {
      wakes_head_ = w->next_wake_;
      w->queued_ = false;
    }
    wakes_tail_ = nullptr;
  }
}

// The close hooks, an intrusive doubly linked list.
void detail::set_loop_observer(const LoopObserver* observer) noexcept {
  g_observer.store(observer, std::memory_order_release);
}

void EventLoop::add_close_hook(detail::CloseHook* h) noexcept {
  h->prev_hook = nullptr;
  h->next_hook = close_hooks_;
  if (close_hooks_) close_hooks_->prev_hook = h;
  close_hooks_ = h;
}

void EventLoop::remove_close_hook(detail::CloseHook* h) noexcept {
  if (h->prev_hook)
    h->prev_hook->next_hook = h->next_hook;
  else if (close_hooks_ == h)
    close_hooks_ = h->next_hook;
  else
    return;  // not registered
  if (h->next_hook) h->next_hook->prev_hook = h->prev_hook;
  h->prev_hook = h->next_hook = nullptr;
}

void EventLoop::destroy_pending_tasks() noexcept {
  // Destroying one task's frame may finish or unlink others; restart from the head each time.
  while (tasks_head_) tasks_head_->destroy_pending();
}

void EventLoop::link_task(detail::TaskLink* t) noexcept {
  t->prev_link = nullptr;
  t->next_link = tasks_head_;
  if (tasks_head_) tasks_head_->prev_link = t;
  tasks_head_ = t;
  ++task_count_;
}

void EventLoop::unlink_task(detail::TaskLink* t) noexcept {
  if (t->prev_link)
    t->prev_link->next_link = t->next_link;
  else
    tasks_head_ = t->next_link;
  if (t->next_link) t->next_link->prev_link = t->prev_link;
  t->prev_link = t->next_link = nullptr;
  --task_count_;
}

// ---- descriptors ---------------------------------------------------------------------------------

EventLoop::FdWatch& EventLoop::watch(int fd) {
  if (fd < 0) throw ValueError("invalid file descriptor " + std::to_string(fd));
  if (closed_) throw RuntimeError("Event loop is closed");
  if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 1);
  return fds_[fd];
}

void EventLoop::update_fd(int fd) {
  FdWatch& w = fds_[fd];
  std::uint32_t want = 0;
  if (w.reader) want |= poll_readable;
  if (w.writer) want |= poll_writable;
  if (want == w.registered) return;
  if (w.registered == 0) {
    poller_->add(fd, want);
    ++watched_fds_;
  } else if (want == 0) {
    poller_->remove(fd);
    --watched_fds_;
  } else {
    poller_->modify(fd, want);
  }
  w.registered = want;
}

void EventLoop::add_reader(int fd, std::function<void()> fn) { set_fd_callback(fd, &FdWatch::reader, std::move(fn)); }
void EventLoop::add_writer(int fd, std::function<void()> fn) { set_fd_callback(fd, &FdWatch::writer, std::move(fn)); }
bool EventLoop::remove_reader(int fd) { return clear_fd_callback(fd, &FdWatch::reader); }
bool EventLoop::remove_writer(int fd) { return clear_fd_callback(fd, &FdWatch::writer); }

void EventLoop::set_fd_callback(int fd, detail::Ref<detail::HandleState> FdWatch::*slot, std::function<void()> fn) {
  FdWatch& w = watch(fd);
  if (w.listener) throw RuntimeError("fd " + std::to_string(fd) + " is used by a transport");
  auto old = std::move(w.*slot);
  w.*slot = detail::Ref<detail::HandleState>::adopt(new detail::HandleState(this, std::move(fn)));
  try {
    update_fd(fd);
  } catch (...) {
    w.*slot = std::move(old);  // the poller refused: the fd keeps its previous callback
    throw;
  }
  if (old) {
    old->cancel();
    w.dropped_at_poll = polls_;
  }
}

bool EventLoop::clear_fd_callback(int fd, detail::Ref<detail::HandleState> FdWatch::*slot) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !(fds_[fd].*slot)) return false;
  auto old = std::move(fds_[fd].*slot);
  old->cancel();
  fds_[fd].dropped_at_poll = polls_;
  update_fd(fd);
  return true;
}

void EventLoop::set_fd_listener(int fd, detail::FdListener* listener, std::uint32_t interest) {
  FdWatch& w = watch(fd);
  if (w.reader || w.writer) throw RuntimeError("fd " + std::to_string(fd) + " has add_reader/add_writer callbacks");
  if (interest == 0) listener = nullptr;
  if (w.listener && w.listener != listener) w.dropped_at_poll = polls_;  // see dispatch_io
  if (interest == w.registered) {
    w.listener = listener;
    return;
  }
  if (w.registered == 0) {
    poller_->add(fd, interest);
    ++watched_fds_;
  } else if (interest == 0) {
    poller_->remove(fd);
    --watched_fds_;
  } else {
    try {
      poller_->modify(fd, interest);
    } catch (...) {
      // A failed change leaves the fd unwatched rather than keeping a listener whose owner, told
      // of the failure, takes itself for unregistered (and may be destroyed without removing it).
      poller_->remove(fd);
      --watched_fds_;
      w.registered = 0;
      w.listener = nullptr;
      w.dropped_at_poll = polls_;
      throw;
    }
  }
  w.registered = interest;
  w.listener = listener;
}

// ---- errors --------------------------------------------------------------------------------------

void EventLoop::default_exception_handler(const ExceptionContext& context) {
  std::string text = context.message.empty() ? "Unhandled exception in event loop" : context.message;
  if (!context.task.empty()) text += "\ntask: " + context.task;
  if (!context.location.empty()) text += "\ncreated at: " + context.location;
  if (context.exception) text += "\nexception: " + describe_exception(context.exception);
  log(LogLevel::error, text);
}

void EventLoop::call_exception_handler(const ExceptionContext& context) noexcept {
  try {
    if (exception_handler_)
      exception_handler_(*this, context);
    else
      default_exception_handler(context);
  } catch (...) {
    // A failing handler must not take the loop down; fall back to the log, as Python does.
    try {
      log(LogLevel::error, "Unhandled error in exception handler: " +
                               describe_exception(std::current_exception()));
    } catch (...) {
    }
  }
}

// ---- the thread's loop ---------------------------------------------------------------------------

EventLoop& get_running_loop() {
  if (!t_running_loop) throw RuntimeError("no running event loop");
  return *t_running_loop;
}

EventLoop& get_event_loop() {
  if (t_running_loop) return *t_running_loop;
  if (!t_thread_loop) t_thread_loop = new_event_loop();
  return *t_thread_loop;
}

void set_event_loop(std::shared_ptr<EventLoop> loop) { t_thread_loop = std::move(loop); }

std::shared_ptr<EventLoop> new_event_loop(LoopOptions options) {
  return std::make_shared<EventLoop>(std::move(options));
}

}  // namespace asyncio
