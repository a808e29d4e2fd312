// SPDX-License-Identifier: MIT
#include "asyncio/threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "asyncio/log.hpp"
#include "asyncio/queues.hpp"
#include "asyncio/wait.hpp"
#include "os/cpu_relax.hpp"

namespace asyncio {

namespace detail {

// ---- ConcurrentStateBase -------------------------------------------------------------------------

bool ConcurrentStateBase::cancel() {
  std::unique_lock lock(m_);
  if (status_ == Status::running || status_ == Status::finished) return false;
  if (status_ == Status::cancelled) return true;
  finish(lock, Status::cancelled);
  return true;
}

bool ConcurrentStateBase::cancelled() const {
  std::lock_guard lock(m_);
  return status_ == Status::cancelled;
}

bool ConcurrentStateBase::running() const {
  std::lock_guard lock(m_);
  return status_ == Status::running;
}

bool ConcurrentStateBase::done() const {
  std::lock_guard lock(m_);
  return done_locked();
}

bool ConcurrentStateBase::set_running_or_notify_cancel() {
  std::lock_guard lock(m_);
  if (status_ == Status::cancelled) return false;
  if (status_ != Status::pending) throw InvalidStateError("Future in unexpected state");
  status_ = Status::running;
  return true;
}

void ConcurrentStateBase::set_exception(std::exception_ptr e) {
  if (!e) throw ValueError("set_exception needs an exception");
  std::unique_lock lock(m_);
  if (done_locked()) throw InvalidStateError("invalid state: the future is already done");
  error_ = std::move(e);
  finish(lock, Status::finished);
}

bool ConcurrentStateBase::wait_locked(std::unique_lock<std::mutex>& lock, std::optional<double> timeout) const {
  auto is_done = [this] { return done_locked(); };
  std::optional<std::chrono::nanoseconds> limit = detail::blocking_timeout(timeout);  // +inf: none
  if (!limit) {
    cv_.wait(lock, is_done);
    return true;
  }
  return cv_.wait_for(lock, *limit, is_done);
}

bool ConcurrentStateBase::wait(std::optional<double> timeout) const {
  std::unique_lock lock(m_);
  return wait_locked(lock, timeout);
}

void ConcurrentStateBase::wait_result(std::unique_lock<std::mutex>& lock, std::optional<double> timeout) {
  if (!wait_locked(lock, timeout)) throw TimeoutError();
  if (status_ == Status::cancelled) throw CancelledError();
  if (error_) std::rethrow_exception(error_);
}

std::exception_ptr ConcurrentStateBase::exception(std::optional<double> timeout) {
  std::unique_lock lock(m_);
  if (!wait_locked(lock, timeout)) throw TimeoutError();
  if (status_ == Status::cancelled) throw CancelledError();
  return error_;
}

void ConcurrentStateBase::add_done_callback(std::function<void()> fn) {
  {
    std::lock_guard lock(m_);
    if (!done_locked()) {
      callbacks_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void ConcurrentStateBase::finish(std::unique_lock<std::mutex>& lock, Status status) {
  status_ = status;
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(callbacks_);
  lock.unlock();
  cv_.notify_all();
  for (auto& fn : callbacks) {
    try {
      fn();
    } catch (...) {
      try {
        log(LogLevel::error, "exception calling callback for a ConcurrentFuture: " +
                                 describe_exception(std::current_exception()));
      } catch (...) {
      }
    }
  }
}

// ---- LoopAnchor / LoopThreads --------------------------------------------------------------------

bool LoopAnchor::post(std::function<void()> fn) noexcept {
  // users_ and detached_ form a Dekker pair (both seq_cst): either this post sees the detach and
  // gives up, or detach() sees this post in progress and waits for it.
  users_.fetch_add(1);
  bool posted = false;
  if (!detached_.load()) {
    try {
      loop_->call_soon_threadsafe(std::move(fn));
      posted = true;
    } catch (...) {  // closed
    }
  }
  if (users_.fetch_sub(1) == 1 && detached_.load()) users_.notify_all();
  return posted;
}

void LoopAnchor::detach() noexcept {
  detached_.store(true);
  for (std::uint32_t n = users_.load(); n != 0; n = users_.load()) users_.wait(n);
}

LoopThreads::LoopThreads(EventLoop* loop) : anchor_(std::make_shared<LoopAnchor>(loop)) {}

LoopThreads::~LoopThreads() = default;

std::shared_ptr<Executor> LoopThreads::default_executor() {
  std::lock_guard lock(m_);
  if (shutdown_called_) throw RuntimeError("Executor shutdown has been called");
  if (!default_) default_ = std::make_shared<ThreadPoolExecutor>(0, "asyncio");
  return default_;
}

void LoopThreads::set_default_executor(std::shared_ptr<Executor> executor) {
  std::lock_guard lock(m_);
  default_ = std::move(executor);
}

std::shared_ptr<Executor> LoopThreads::begin_shutdown() {
  std::lock_guard lock(m_);
  shutdown_called_ = true;
  return default_;
}

bool LoopThreads::has_default_executor() const {
  std::lock_guard lock(m_);
  return default_ != nullptr && !shutdown_called_;
}

LoopThreads& loop_threads(EventLoop& loop) {
  std::atomic<LoopThreads*>& slot = loop.threads_slot().ptr;
  LoopThreads* p = slot.load(std::memory_order_acquire);
  if (p) return *p;
  auto* fresh = new LoopThreads(&loop);
  if (slot.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread won
  return *p;
}

namespace {
// How long the loop polls for a thread's result before it blocks, and for how long after a call
// started it still expects the result that soon. A call that takes longer (a blocking read, a
// sleep) costs the loop nothing once it is a millisecond old.
constexpr auto kLoopSpin = std::chrono::microseconds(50);
constexpr std::int64_t kRecentCallNs = 1'000'000;
}  // namespace

bool LoopThreadsSlot::spin_until_posted(const std::atomic<bool>& pending) const noexcept {
  auto now = std::chrono::steady_clock::now();
  std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  if (now_ns - last_call_ns > kRecentCallNs) return false;
  return os::poll_for(kLoopSpin, [&pending] { return pending.load(std::memory_order_acquire); });
}

LoopThreadsSlot::~LoopThreadsSlot() {
  if (LoopThreads* p = ptr.exchange(nullptr)) {
    p->anchor()->detach();  // no thread posts into the loop from now on
    delete p;               // releases the default executor (its destructor joins the threads)
  }
}

// ---- LoopLink ------------------------------------------------------------------------------------

void LoopLink::attach(FutureStateBase& future) {
  add_ref();  // the future's callback holds one reference
  try {
    future.add_callback(DoneCallback{&on_future_done, this, &on_future_dropped});
  } catch (...) {
    release();
    throw;
  }
  future_ = &future;
}

void LoopLink::count_in(LoopThreadsSlot& slot) noexcept {
  if (!future_ || counted_in_) return;
  counted_in_ = &slot;
  ++slot.calls_in_flight;
  slot.last_call_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
}

void LoopLink::uncount() noexcept {
  if (LoopThreadsSlot* slot = std::exchange(counted_in_, nullptr)) --slot->calls_in_flight;
}

void LoopLink::on_future_done(void* self, FutureStateBase& future) {
  auto* link = static_cast<LoopLink*>(self);
  link->future_ = nullptr;
  link->uncount();
  if (future.cancelled()) link->on_future_cancelled();
  link->release();
}

void LoopLink::on_future_dropped(void* self) noexcept {
  auto* link = static_cast<LoopLink*>(self);
  link->future_ = nullptr;  // nobody holds the future any more; a late result goes nowhere
  link->uncount();
  link->release();
}

void LoopLink::post_result() noexcept {
  add_ref();
  auto ref = WorkRef<LoopLink>::adopt(this);
  anchor_->post([ref] { ref->deliver_now(); });
}

void LoopLink::post_cancel() noexcept {
  add_ref();
  auto ref = WorkRef<LoopLink>::adopt(this);
  anchor_->post([ref] { ref->cancel_now(); });
}

void LoopLink::deliver_now() {
  if (FutureStateBase* f = future_) deliver(*f);  // completing it runs on_future_done
}

void LoopLink::cancel_now() {
  if (FutureStateBase* f = future_) f->cancel({});
}

// ---- shutting the default executor down ----------------------------------------------------------

namespace {

/// Runs each call on a thread of its own; the thread is joined by join() or detached when the
/// executor goes away first.
class DedicatedThread final : public Executor {
 public:
  ~DedicatedThread() override {
    if (thread_.joinable()) thread_.detach();
  }
  void execute(Work work) override { thread_ = std::thread(std::move(work)); }
  void shutdown(bool, bool) override {}
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  void detach() {
    if (thread_.joinable()) thread_.detach();
  }

 private:
  std::thread thread_;
};

}  // namespace

void shutdown_default_executor_at_exit(EventLoop& loop) noexcept {
  LoopThreads* threads = loop.threads_slot().ptr.load(std::memory_order_acquire);
  if (!threads || !threads->has_default_executor()) return;
  try {
    // Python's Runner uses constants.THREAD_JOIN_TIMEOUT, 300 seconds.
    loop.run_until_complete(loop.shutdown_default_executor(300.0));
  } catch (...) {
    loop.call_exception_handler({"error while shutting down the default executor", std::current_exception(), {}, {}});
  }
}

}  // namespace detail

// ---- EventLoop's thread methods ------------------------------------------------------------------

void EventLoop::set_default_executor(std::shared_ptr<Executor> executor) {
  detail::loop_threads(*this).set_default_executor(std::move(executor));
}

Coro<void> EventLoop::shutdown_default_executor(std::optional<double> timeout) {
  detail::check_timeout(timeout);  // before anything is shut down
  std::shared_ptr<Executor> executor = detail::loop_threads(*this).begin_shutdown();
  if (!executor) co_return;
  // executor->shutdown(wait=true) blocks, so it runs on a thread of its own while the loop keeps
  // going (the calls still in flight may need the loop to deliver their results).
  detail::DedicatedThread joiner;
  Future<void> joined = asyncio::run_in_executor(*this, &joiner, [executor] { executor->shutdown(true); });
  bool timed_out = false;
  // Named first: g++ 12 destroys argument temporaries of a co_await expression twice when it
  // throws (the Future copy passed to wait_for would be released twice on a timeout).
  Coro<void> waiting = wait_for(joined, timeout);
  try {
    co_await waiting;
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) {
    log(LogLevel::warning, "The executor did not finish joining its threads within " +
                               std::to_string(timeout.value_or(0)) + " seconds.");
    executor->shutdown(false);
    joiner.detach();
    co_return;
  }
  joiner.join();
}

// ---- ThreadPoolExecutor --------------------------------------------------------------------------

std::size_t default_max_workers() noexcept {
  std::size_t cores = std::thread::hardware_concurrency();
  return std::min<std::size_t>(32, (cores ? cores : 1) + 4);
}

struct ThreadPoolExecutor::Impl {
  std::mutex m;
  std::condition_variable cv;
  detail::Ring<Work> queue;
  std::vector<std::thread> threads;
  std::size_t max_workers = 0;
  std::size_t idle = 0;               // workers blocked in cv.wait (guarded by m)
  std::atomic<std::size_t> queued{0};  // queue.size(), readable without the lock
  std::atomic<std::size_t> spinning{0};  // workers polling for work before they sleep
  bool shutdown = false;
  std::string prefix;
  std::mutex join_mutex;  // serializes shutdown(wait=true) callers

  static void work(std::shared_ptr<Impl> self, std::size_t index);
  /// Polls for queued work for a short while; true if some appeared.
  bool spin_for_work() const noexcept;
};

namespace {
// How long an idle worker keeps polling before it sleeps on the condition variable. A caller that
// awaits one call after another (to_thread in a loop) submits the next call within a few
// microseconds of getting the previous result, so the worker picks it up without a futex
// wake-up; when work stops, each worker burns at most this long.
constexpr auto kSpin = std::chrono::microseconds(50);

}  // namespace

bool ThreadPoolExecutor::Impl::spin_for_work() const noexcept {
  return detail::os::poll_for(kSpin, [this] { return queued.load(std::memory_order_acquire) != 0; });
}

void ThreadPoolExecutor::Impl::work(std::shared_ptr<Impl> self, std::size_t index) {
  std::string name = self->prefix + "_" + std::to_string(index);
  if (name.size() > 15) name.resize(15);  // the kernel's limit
  pthread_setname_np(pthread_self(), name.c_str());

  std::unique_lock lock(self->m);
  for (;;) {
    if (!self->queue.empty()) {
      Work w = self->queue.pop_front();
      self->queued.store(self->queue.size(), std::memory_order_release);
      lock.unlock();
      w();
      // Poll a little before sleeping; execute() counts spinning workers as available, so it
      // neither wakes nor starts a thread for work a spinner will take.
      self->spinning.fetch_add(1, std::memory_order_acq_rel);
      self->spin_for_work();
      lock.lock();
      self->spinning.fetch_sub(1, std::memory_order_acq_rel);
      continue;
    }
    if (self->shutdown) return;  // queued calls all ran (or were cancelled)
    ++self->idle;
    self->cv.wait(lock);
    --self->idle;
  }
}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix)
    : impl_(std::make_shared<Impl>()) {
  impl_->max_workers = max_workers ? max_workers : default_max_workers();
  impl_->prefix = thread_name_prefix.empty() ? "asyncio" : std::move(thread_name_prefix);
}

ThreadPoolExecutor::~ThreadPoolExecutor() { shutdown(true); }

std::size_t ThreadPoolExecutor::max_workers() const noexcept { return impl_->max_workers; }

std::size_t ThreadPoolExecutor::thread_count() const {
  std::lock_guard lock(impl_->m);
  return impl_->threads.size();
}

void ThreadPoolExecutor::execute(Work work) {
  Impl& im = *impl_;
  std::unique_lock lock(im.m);
  if (im.shutdown) throw RuntimeError("cannot schedule new futures after shutdown");
  im.queue.push_back(std::move(work));
  std::size_t queued = im.queue.size();
  // Workers that are polling take queued work by themselves (they re-check the queue under the
  // lock before they sleep). Beyond them, wake an idle worker, and start another thread (up to
  // the maximum) if the idle ones cannot take everything, as Python's _adjust_thread_count does.
  // `queued` is only the pollers' hint: published after unlocking, so that a poller that sees it
  // does not find the lock still held.
  std::size_t available = im.spinning.load(std::memory_order_acquire);
  if (available >= queued) {
    lock.unlock();
    im.queued.store(queued, std::memory_order_release);
    return;
  }
  bool wake = im.idle > 0;
  if (available + im.idle < queued && im.threads.size() < im.max_workers) {
    try {
      im.threads.emplace_back(&Impl::work, impl_, im.threads.size());
    } catch (const std::system_error&) {
      if (im.threads.empty()) {
        // Nobody could ever run it: take it back (it is cancelled) and report.
        Work taken = im.queue.pop_front();
        im.queued.store(im.queue.size(), std::memory_order_release);
        lock.unlock();
        throw;
      }
    }
  }
  lock.unlock();
  im.queued.store(queued, std::memory_order_release);
  if (wake) im.cv.notify_one();
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  Impl& im = *impl_;
  std::vector<Work> dropped;
  {
    std::lock_guard lock(im.m);
    im.shutdown = true;
    if (cancel_futures) {
      dropped.reserve(im.queue.size());
      while (!im.queue.empty()) dropped.push_back(im.queue.pop_front());
      im.queued.store(0, std::memory_order_release);
    }
  }
  im.cv.notify_all();
  dropped.clear();  // cancels each call that never started (outside the lock)
  if (!wait) return;
  std::lock_guard join_lock(im.join_mutex);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(im.m);
    threads.swap(im.threads);
  }
  for (auto& t : threads) {
    if (t.get_id() == std::this_thread::get_id())
      t.detach();  // shut down from one of our own calls: that thread ends by itself
    else
      t.join();
  }
}

}  // namespace asyncio
