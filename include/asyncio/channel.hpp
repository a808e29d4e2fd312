// SPDX-License-Identifier: MIT
// Channel<T>: a bounded, thread-safe, multi-producer multi-consumer queue between loops and
// threads. The one queue that crosses threads: asyncio's Queue belongs to one loop.
//
//   asyncio::Channel<Job> jobs(1024);              // shared by every loop and thread using it
//   co_await jobs.send(std::move(job));            // a task on any loop: waits while it is full
//   Job j = co_await jobs.recv();                  // a task on any (other) loop
//   jobs.send_blocking(std::move(job), 1.0);       // a plain thread: blocks up to 1 s
//   std::optional<Job> k = jobs.try_recv();        // never waits
//   jobs.close();                                  // receivers drain what is left, then ChannelClosed
//
// Semantics (docs/multicore.md):
//  - First come, first served: an item goes straight to the receiver that waited longest, and a
//    slot freed while senders wait takes the item of the one that waited longest (as Go's
//    channels do: that sender has sent, and is woken). Nobody barges in.
//  - A send or recv that raises (CancelledError, TimeoutError, ChannelClosed) did nothing: the
//    item was not sent, nothing was taken. One that returns did it exactly once. A receiver
//    cancelled after an item was handed to it gives the item back (to the next waiting receiver,
//    or to the front of the channel). A sender cancelled after its item went in returns normally
//    (it has sent) and the cancellation is raised at its task's next suspension, as when a task
//    is cancelled while it runs. So no item is lost or delivered twice, whenever the cancel comes.
//  - An item handed to a waiting receiver counts against the capacity until that receiver has
//    run (asyncio.Queue's rule too).
//  - close(): sends raise ChannelClosed (waiting senders too, their items not sent); receivers
//    take what is left, then raise ChannelClosed.
//  - Two modes. While nobody waits (no waiting sender or receiver) and the channel is open, a
//    send or receive that need not wait is lock-free (a Vyukov ring, detail/channel_ring.hpp),
//    done in await_ready without suspending. The first party that must wait takes the lock and
//    locks the ring (a bit in each of its two position counters: no lock-free operation starts,
//    those already under way finish on their own); from then on every operation takes the lock,
//    until the waiters are gone and the lock's holder unlocks the ring (if the channel holds
//    items, or has items out with woken receivers, which lock-free sends count as taken room).
//  - A party that must wait while the channel is lock-free first gives its CPU away once and looks
//    again (detail::ChannelYieldGate says when): the party on another thread that would make
//    room or an item often has meanwhile, and parking would lock the channel for everyone.
//  - Storage is a ring of cells (`capacity` rounded up to a power of two, at least 2) allocated
//    once; waiters live in the awaiting task's frame or the blocked thread's stack; a task on
//    another loop is woken through an intrusive node (EventLoop::post_remote_wake). A send/recv
//    allocates nothing beyond the item itself.
//  - T must be nothrow move-constructible (move-only types are fine).
//  - The channel must outlive every send and recv in progress on it.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncio/detail/adaptive_mutex.hpp"
#include "asyncio/detail/channel_ring.hpp"
#include "asyncio/detail/duration.hpp"
#include "asyncio/detail/task_core.hpp"
#include "asyncio/errors.hpp"

namespace asyncio {

/// Sending on a closed Channel, or receiving from one that is closed and empty: the end of the
/// channel (Python's queue.ShutDown / asyncio.QueueShutDown for a queue that was shut down).
class ChannelClosed : public Error {
 public:
  ChannelClosed() : Error("ChannelClosed") {}
  using Error::Error;
};

namespace detail {

class ChannelWaitList;

/// A party waiting on a Channel: a task (ChannelTaskWaiter) or a blocked thread
/// (ChannelThreadWaiter). Every field is guarded by the channel's mutex.
class ChannelWaiter {
 public:
  enum class State : std::uint8_t {
    idle,     // not waiting (done at once, or not started)
    waiting,  // linked in the channel's list
    granted,  // an item was handed to it (recv) or its item went in (send); wake-up on its way
    aborted,  // cancelled while waiting (unlinked)
    closed,   // woken because the channel closed
    done,     // resumed
  };
  /// A receiver's std::optional<T>, which the sender serving it fills; a sender's T, which the
  /// receiver that frees a slot moves in.
  void* slot = nullptr;
  /// Written under the channel's mutex; atomic (relaxed) only so that an awaiter's destructor
  /// may look at it first without taking the mutex.
  std::atomic<State> chan_state{State::idle};

  /// Called with the channel's mutex held, once chan_state became granted or closed.
  virtual void notify() noexcept = 0;

 protected:
  ChannelWaiter() noexcept = default;
  /// Copies (g++ moves awaiters into the frame while idle) start unlinked.
  ChannelWaiter(const ChannelWaiter&) noexcept {}
  ~ChannelWaiter() = default;

 private:
  friend class ChannelWaitList;
  ChannelWaiter* prev_ = nullptr;
  ChannelWaiter* next_ = nullptr;
};

/// Waiters in arrival order (intrusive, so waiting allocates nothing).
class ChannelWaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push_back(ChannelWaiter* w) noexcept {
    w->prev_ = tail_;
    w->next_ = nullptr;
    (tail_ ? tail_->next_ : head_) = w;
    tail_ = w;
  }
  void remove(ChannelWaiter* w) noexcept {
    (w->prev_ ? w->prev_->next_ : head_) = w->next_;
    (w->next_ ? w->next_->prev_ : tail_) = w->prev_;
    w->prev_ = w->next_ = nullptr;
  }
  ChannelWaiter* pop_front() noexcept {
    ChannelWaiter* w = head_;
    if (w) remove(w);
    return w;
  }

 private:
  ChannelWaiter* head_ = nullptr;
  ChannelWaiter* tail_ = nullptr;
};

/// A task waiting on a Channel: parks the task; woken directly when the party that serves it runs
/// on the same loop, through the loop's remote-wake queue otherwise.
class ChannelTaskWaiter : public ChannelWaiter, public Suspension, public RemoteWake {
 public:
  void notify() noexcept override;
  void remote_wake() noexcept override;
  /// Task::cancel while parked: unlinks the waiter unless its turn already came.
  bool cancel_wait(const std::string& msg) noexcept override;
  WaitTarget wait_target() const noexcept override { return {"channel", nullptr, 0}; }

 protected:
  ChannelTaskWaiter() noexcept = default;
  ChannelTaskWaiter(const ChannelTaskWaiter& o) noexcept : ChannelWaiter(o), Suspension(), RemoteWake(o) {}
  ~ChannelTaskWaiter() = default;
  /// With `m` held: links into `list` and parks the running task on `h`.
  void park_locked(AdaptiveMutex& m, ChannelWaitList& list, std::coroutine_handle<> h, const char* what);
  /// From a destructor, before taking the mutex: false if the waiter surely is in no list and
  /// has nothing handed to it (it never parked, or it resumed).
  bool may_be_linked() const noexcept {
    State s = chan_state.load(std::memory_order_relaxed);
    return s == State::waiting || s == State::granted;
  }
  /// With the mutex held, from a destructor: unlinks a waiter still waiting, and takes a granted
  /// one's wake-up off its loop's queue. True if it was granted (what it holds must go back).
  bool leave_locked() noexcept;
  /// First thing in await_resume: returns idle (done at once), granted, or closed (and marks the
  /// waiter done); an aborted wait raises CancelledError. A granted waiter still owes its task's
  /// resume_checked().
  State take_resume_state();

  TaskCore* task_ = nullptr;  // set when parked
  EventLoop* loop_ = nullptr;
  AdaptiveMutex* m_ = nullptr;
  ChannelWaitList* list_ = nullptr;
};

/// A plain thread blocked on a Channel.
class ChannelThreadWaiter final : public ChannelWaiter {
 public:
  ChannelThreadWaiter() noexcept = default;
  void notify() noexcept override;
  /// Links into `list` and blocks until served (returns: an item was handed to it, or its item
  /// kept for it) or `limit` passes (nullopt: no limit): then unlinks and raises TimeoutError.
  /// ChannelClosed if woken by close().
  void wait(std::unique_lock<AdaptiveMutex>& lock, ChannelWaitList& list, std::optional<std::chrono::nanoseconds> limit);

 private:
  std::atomic<std::uint32_t> woken_{0};  // 1 once notified; the thread sleeps on it (a futex)
};

/// Whether a party about to park on a Channel first gives its CPU away once and looks again.
///
/// Why: parking is the expensive way to wait. It takes the channel's lock and switches the
/// channel to its locked mode, where every other party takes the lock too (and one preempted
/// while holding it stalls the rest); then the wake-up crosses threads. When the party that
/// would make room or an item runs on another thread, one sched_yield (a few hundred ns, or a
/// time slice to a thread this CPU owes one) often lets it do so, and the look after it finds
/// what was missing (docs/multicore.md has the figures). When the look after the yield keeps
/// finding nothing (the parties share one loop, where the one that would help cannot run until
/// this task suspends), the gate stops yielding, and tries again once in a while. Only the way
/// to parking touches it.
class ChannelYieldGate {
 public:
  /// True: the CPU was given away once (report what the look after it found with learn()).
  /// False: park at once; yielding has lately not helped.
  bool yield_first() noexcept;
  /// After yield_first() returned true: whether the look after the yield found room or an item.
  void learn(bool helped) noexcept;

 private:
  // Read and written without atomic read-modify-write: a lost update only nudges a heuristic.
  // The gate yields while at least kThreshold of its yields helped (a moving average weighting
  // the newest 1/8): a yield costs a system call, and one that found nothing only delayed the
  // park. Below that it yields at one park in kProbeEvery, to notice a change.
  static constexpr int kOne = 1024;                   // help_rate_ of 1.0
  static constexpr int kThreshold = kOne * 4 / 5;
  static constexpr unsigned kProbeEvery = 64;
  std::atomic<int> help_rate_{kOne};
  std::atomic<unsigned> skipped_{0};
};

}  // namespace detail

/// A bounded multi-producer multi-consumer channel usable from any loop and any thread. Not
/// copyable or movable; share it by reference or std::shared_ptr.
template <class T>
class Channel {
  static_assert(!std::is_reference_v<T>, "channel items cannot be references");
  static_assert(std::is_nothrow_move_constructible_v<T>, "channel items must be nothrow move-constructible");

 public:
  using value_type = T;  ///< the item type

  /// co_await ch.send(item): sends, waiting (parked, not blocking the loop) while the channel is
  /// full. ChannelClosed if the channel is closed (then or while waiting; the item is not sent).
  class SendAwaiter final : public detail::ChannelTaskWaiter {
   public:
    using is_asyncio_awaitable = void;  ///< marks it as an awaitable of this library
    /// Holds `item` until it is sent.
    SendAwaiter(Channel& ch, T&& item) noexcept : ch_(&ch), item_(std::move(item)) {}
    /// Moves a send not yet awaited.
    SendAwaiter(SendAwaiter&& o) noexcept : ChannelTaskWaiter(o), ch_(o.ch_), item_(std::move(o.item_)) {}
    ~SendAwaiter() {
      if (!may_be_linked()) return;
      Locked lock(*ch_);
      // The task went away (its loop closed) while waiting, or after its item went in.
      leave_locked();
    }
    /// Sends at once, lock-free, if the channel is in its lock-free mode and has room.
    bool await_ready() noexcept { return ch_->try_send_lock_free(item_); }
    /// Sends at once if there is room (after giving the CPU away once, if the channel's gate
    /// says so), else parks the task among the senders.
    bool await_suspend(std::coroutine_handle<> h) {
      if (ch_->try_send_after_yield(item_)) return false;
      Locked lock(*ch_);
      if (ch_->closed_) {
        chan_state.store(State::closed, std::memory_order_relaxed);  // raised by await_resume
        return false;
      }
      if (ch_->try_send_locked(item_)) return false;
      slot = &item_;
      park_locked(ch_->m_, ch_->senders_, h, "send to a Channel");
      return true;
    }
    /// Completes the send, or raises ChannelClosed or the task's CancelledError (nothing sent).
    void await_resume() {
      switch (take_resume_state()) {
        case State::idle:
          return;  // sent at once
        case State::granted:
          // Its item went in: sent. A cancellation due now comes at the next suspension.
          task_->defer_cancel();
          return;
        default:  // closed
          throw ChannelClosed();
      }
    }

   private:
    Channel* ch_;
    T item_;
  };

  /// T v = co_await ch.recv(): the next item, waiting (parked) while the channel is empty.
  /// ChannelClosed once the channel is closed and empty.
  class RecvAwaiter final : public detail::ChannelTaskWaiter {
   public:
    using is_asyncio_awaitable = void;  ///< marks it as an awaitable of this library
    /// A receive from `ch`.
    explicit RecvAwaiter(Channel& ch) noexcept : ch_(&ch) {}
    /// Moves a receive not yet awaited.
    RecvAwaiter(RecvAwaiter&& o) noexcept : ChannelTaskWaiter(o), ch_(o.ch_) {}
    ~RecvAwaiter() {
      if (!may_be_linked()) return;
      Locked lock(*ch_);
      // The task went away (its loop closed) after an item was handed to it: the item goes back.
      if (leave_locked()) ch_->give_back_locked(std::move(*item_));
    }
    /// Takes an item at once, lock-free, if the channel is in its lock-free mode and has one.
    bool await_ready() noexcept { return ch_->try_recv_lock_free(item_); }
    /// Takes an item at once if there is one (after giving the CPU away once, if the channel's
    /// gate says so), else parks the task among the receivers.
    bool await_suspend(std::coroutine_handle<> h) {
      if (ch_->try_recv_after_yield(item_)) return false;
      Locked lock(*ch_);
      if (ch_->try_recv_locked(item_)) return false;
      if (ch_->drained_locked()) {
        chan_state.store(State::closed, std::memory_order_relaxed);
        return false;
      }
      slot = &item_;
      park_locked(ch_->m_, ch_->receivers_, h, "receive from a Channel");
      return true;
    }
    /// The item, or ChannelClosed, or the task's CancelledError (the item, if any, goes back).
    T await_resume() {
      switch (take_resume_state()) {
        case State::idle:
          return std::move(*item_);  // taken at once
        case State::granted:
          try {
            task_->resume_checked();
          } catch (...) {
            Locked lock(*ch_);
            ch_->give_back_locked(std::move(*item_));  // never lose a handed item
            throw;
          }
          {
            Locked lock(*ch_);
            ch_->received_locked();
          }
          return std::move(*item_);
        default:  // closed
          throw ChannelClosed();
      }
    }

   private:
    Channel* ch_;
    std::optional<T> item_;
  };

  /// A channel holding up to `capacity` items (at least 1: ValueError otherwise).
  explicit Channel(std::size_t capacity) : ring_(checked_capacity(capacity)) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  /// Destroys the items left. No send or recv may be in progress.
  ~Channel() = default;

  /// From a task on any loop: `co_await ch.send(std::move(item))`.
  [[nodiscard]] SendAwaiter send(T item) noexcept { return SendAwaiter(*this, std::move(item)); }
  /// From a task on any loop: `T v = co_await ch.recv()`.
  [[nodiscard]] RecvAwaiter recv() noexcept { return RecvAwaiter(*this); }

  /// From a plain thread (never a loop's thread: it would block the loop): sends, blocking while
  /// the channel is full, up to `timeout` seconds (nullopt or +inf: no limit; 0: do not wait).
  /// TimeoutError if no slot came in time (the item is not sent); ChannelClosed if closed.
  void send_blocking(T item, std::optional<double> timeout = std::nullopt) {
    auto limit = detail::blocking_timeout(timeout);
    if (try_send_lock_free(item) || try_send_after_yield(item)) return;
    Locked lock(*this);
    if (closed_) throw ChannelClosed();
    if (try_send_locked(item)) return;
    detail::ChannelThreadWaiter w;
    w.slot = &item;
    w.wait(lock.held, senders_, limit);  // returns once a receiver moved the item in
  }
  /// From a plain thread: the next item, blocking while the channel is empty, up to `timeout`
  /// seconds. TimeoutError if none came in time; ChannelClosed once closed and empty.
  T recv_blocking(std::optional<double> timeout = std::nullopt) {
    auto limit = detail::blocking_timeout(timeout);
    std::optional<T> out;
    if (try_recv_lock_free(out) || try_recv_after_yield(out)) return std::move(*out);
    Locked lock(*this);
    if (try_recv_locked(out)) return std::move(*out);
    if (drained_locked()) throw ChannelClosed();
    detail::ChannelThreadWaiter w;
    w.slot = &out;
    w.wait(lock.held, receivers_, limit);  // returns with an item handed to us
    received_locked();
    return std::move(*out);
  }

  /// From anywhere, never waits: sends `item` (moved from) and returns true, or returns false
  /// (full; `item` untouched). ChannelClosed if closed.
  bool try_send(T& item) {
    if (try_send_lock_free(item)) return true;
    Locked lock(*this);
    if (closed_) throw ChannelClosed();
    return try_send_locked(item);
  }
  /// try_send of an rvalue (moved only when it is sent).
  bool try_send(T&& item) { return try_send(item); }
  /// From anywhere, never waits: the next item, or nullopt if there is none now. ChannelClosed
  /// once closed and empty.
  std::optional<T> try_recv() {
    std::optional<T> out;
    if (try_recv_lock_free(out)) return out;
    Locked lock(*this);
    if (!try_recv_locked(out) && drained_locked()) throw ChannelClosed();
    return out;
  }

  /// Closes the channel (idempotent): later sends and waiting senders raise ChannelClosed;
  /// receivers take the items left, then raise ChannelClosed.
  void close() noexcept {
    Locked lock(*this);
    closed_ = true;
    while (detail::ChannelWaiter* s = senders_.pop_front()) wake(s, State::closed);
    end_receivers_if_drained_locked();
  }
  /// True once close() was called.
  bool is_closed() const {
    std::lock_guard lock(m_);
    return closed_;
  }
  /// Items in the channel now (a snapshot: other threads may change it at once).
  std::size_t size() const noexcept { return ring_.size(); }
  /// The most items the channel holds.
  std::size_t capacity() const noexcept { return ring_.capacity(); }

 private:
  using State = detail::ChannelWaiter::State;

  static std::size_t checked_capacity(std::size_t capacity) {
    if (capacity == 0) throw ValueError("a Channel needs a capacity of at least 1");
    // Its ring has a power of two of cells; past this no allocation could succeed anyway.
    if (capacity > (std::size_t{1} << 48)) throw ValueError("a Channel's capacity must be at most 2**48");
    return capacity;
  }

  /// The channel's lock, held in its locked mode: taking it switches the channel to that mode
  /// (waiting for the lock-free operations in progress to finish); letting it go switches back
  /// if nobody waits any more. `held` is there for a blocked thread, which lets go meanwhile.
  struct Locked {
    explicit Locked(Channel& c) : ch(c), held(c.m_) { ch.enter_locked_mode(); }
    ~Locked() {
      if (held.owns_lock()) ch.leave_locked_mode_if_idle();
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    Channel& ch;
    std::unique_lock<detail::AdaptiveMutex> held;
  };

  /// A send that found no room lock-free, before it takes the lock: gives the CPU away once and
  /// looks again (see yield_then).
  bool try_send_after_yield(T& item) noexcept {
    return yield_then([&] { return try_send_lock_free(item); });
  }
  /// A receive that found no item lock-free, likewise.
  bool try_recv_after_yield(std::optional<T>& out) noexcept {
    return yield_then([&] { return try_recv_lock_free(out); });
  }
  /// Gives the CPU away once and returns `look_again()`, if the channel is in its lock-free mode
  /// (parking would switch every party to the lock; in the locked mode it changes nothing for
  /// the others) and its gate says yields lately helped; else false at once.
  template <class Look>
  bool yield_then(Look look_again) noexcept {
    if (ring_.locked() || !gate_.yield_first()) return false;
    const bool found = look_again();
    gate_.learn(found);
    return found;
  }
  /// Lock-free send if the ring is not locked and has room; false: take the lock.
  bool try_send_lock_free(T& item) noexcept { return ring_.try_push(item); }
  /// Lock-free receive if the ring is not locked and has an item; false: take the lock.
  bool try_recv_lock_free(std::optional<T>& out) noexcept { return ring_.try_pop(out); }
  /// With m_ held: no lock-free operation starts from now on.
  void enter_locked_mode() noexcept {
    if (!ring_.locked()) ring_.lock();  // only m_'s holder locks and unlocks the ring
  }
  /// With m_ held, before letting it go: lock-free again if nobody waits, the channel is open,
  /// and it holds items or has items out with woken receivers (which lock-free sends count
  /// against the capacity: set_held_out). While it is empty otherwise, a receive could not be
  /// lock-free anyway, and staying locked spares a channel whose parties take turns locking and
  /// unlocking the ring at every item.
  void leave_locked_mode_if_idle() noexcept {
    if (closed_ || !senders_.empty() || !receivers_.empty()) return;
    if (ring_.size() == 0 && in_flight_ == 0) return;
    if (!ring_.locked()) return;
    ring_.set_held_out(in_flight_);
    ring_.unlock();
  }

  /// Slots in use: items stored, and items handed to woken receivers.
  std::size_t used() const noexcept { return ring_.size() + in_flight_; }
  bool drained_locked() const noexcept { return closed_ && used() == 0; }

  /// Sends `item` (moving it) to the longest-waiting receiver or into the ring; false (item
  /// untouched) if full or if senders wait already.
  bool try_send_locked(T& item) noexcept {
    if (used() == capacity() || !senders_.empty()) return false;
    deliver_locked(item, false);
    return true;
  }
  /// Takes the next item into `out`; false if there is none.
  bool try_recv_locked(std::optional<T>& out) noexcept {
    if (ring_.size() == 0) return false;
    out.emplace(ring_.pop_front());
    admit_senders_locked();
    return true;
  }
  /// A free slot: to a waiting receiver (which then holds it until it runs), else the ring.
  void deliver_locked(T& item, bool front) noexcept {
    if (detail::ChannelWaiter* r = receivers_.pop_front()) {  // they wait only while it is empty
      static_cast<std::optional<T>*>(r->slot)->emplace(std::move(item));
      ++in_flight_;
      wake(r, State::granted);
    } else if (front) {
      ring_.push_front(std::move(item));
    } else {
      ring_.push_back(std::move(item));
    }
  }
  /// Slots freed while senders wait take their items, longest-waiting first; those senders have
  /// sent and are woken.
  void admit_senders_locked() noexcept {
    while (used() < capacity()) {
      detail::ChannelWaiter* s = senders_.pop_front();
      if (!s) return;
      deliver_locked(*static_cast<T*>(s->slot), false);
      wake(s, State::granted);
    }
  }
  /// A woken receiver took its item.
  void received_locked() noexcept {
    --in_flight_;
    admit_senders_locked();
    end_receivers_if_drained_locked();
  }
  /// A woken receiver gives its item back (cancelled, or its task went away): to the next waiting
  /// receiver, else to the front. Its slot stays counted, so it always fits.
  void give_back_locked(T&& item) noexcept {
    --in_flight_;
    deliver_locked(item, true);
  }
  /// Closed and nothing left or coming: waiting receivers end with ChannelClosed.
  void end_receivers_if_drained_locked() noexcept {
    if (!drained_locked()) return;
    while (detail::ChannelWaiter* r = receivers_.pop_front()) wake(r, State::closed);
  }
  static void wake(detail::ChannelWaiter* w, State why) noexcept {
    w->chan_state.store(why, std::memory_order_relaxed);
    w->notify();
  }

  // The locked mode's state, all guarded by m_ (the ring has its own cache lines).
  mutable detail::AdaptiveMutex m_;
  std::size_t in_flight_ = 0;
  detail::ChannelWaitList senders_;
  detail::ChannelWaitList receivers_;
  bool closed_ = false;
  detail::ChannelYieldGate gate_;  // its own word: written only on the way to parking
  detail::ChannelRing<T> ring_;
};

}  // namespace asyncio
#pragma GCC visibility pop
