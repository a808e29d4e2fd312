// SPDX-License-Identifier: MIT
// Queues between tasks of one loop: Queue<T> (FIFO), LifoQueue<T>, PriorityQueue<T, Compare>
// (Python's asyncio.Queue, LifoQueue, PriorityQueue, with Python 3.13's shutdown()).
//
//   asyncio::Queue<Job> q(100);                 // bounded: put() waits while 100 items are in
//   co_await q.put(std::move(job));             // producer
//   Job j = co_await q.get();                   // consumer
//   q.task_done();                              // ... and q.join() waits for every item's task_done
//
// Not thread-safe (like Python's); between threads use call_soon_threadsafe.
//
// How it differs from a naive queue (see docs/sync-and-threads.md):
//  - Items move straight into a waiting getter (or a freed slot into a waiting putter) at the
//    moment they become available, in FIFO order of the waiters. Nobody can barge in between.
//  - A getter cancelled after an item was handed to it gives the item back: to the next waiting
//    getter if there is one, otherwise to the front of the queue (for a PriorityQueue, back into
//    the heap; for a LifoQueue, on top). The item is never lost. A putter cancelled after a slot
//    was handed to it gives the slot to the next putter; its item is not put.
//  - The storage is a ring buffer (a vector for Lifo/Priority) that grows and never shrinks, and
//    waiters live in the waiting tasks' frames: in the steady state a put/get allocates nothing.
//  - Move-only element types work.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/detail/waiters.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/locks.hpp"

namespace asyncio {

/// get_nowait() on an empty queue (Python's asyncio.QueueEmpty).
class QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("QueueEmpty") {}
  using Error::Error;
};

/// put_nowait() on a full queue (Python's asyncio.QueueFull).
class QueueFull : public Error {
 public:
  QueueFull() : Error("QueueFull") {}
  using Error::Error;
};

/// put/get on a queue that was shut down (Python 3.13's asyncio.QueueShutDown).
class QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("QueueShutDown") {}
  using Error::Error;
};

namespace detail {

/// A growable ring of T (move-only types allowed). Capacity is a power of two; it grows by
/// doubling and never shrinks, so a queue in steady state allocates nothing.
template <class T>
class Ring {
 public:
  Ring() noexcept = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    clear();
    if (buf_) std::allocator<T>().deallocate(buf_, cap_);
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return cap_; }

  void push_back(T&& v) {
    if (size_ == cap_) grow();
    ::new (static_cast<void*>(buf_ + ((head_ + size_) & (cap_ - 1)))) T(std::move(v));
    ++size_;
  }
  void push_front(T&& v) {
    if (size_ == cap_) grow();
    std::size_t at = (head_ + cap_ - 1) & (cap_ - 1);
    ::new (static_cast<void*>(buf_ + at)) T(std::move(v));
    head_ = at;
    ++size_;
  }
  T pop_front() {
    T* slot = buf_ + head_;
    T v(std::move(*slot));
    slot->~T();
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return v;
  }
  T& front() noexcept { return buf_[head_]; }
  void clear() noexcept {
    while (size_ > 0) {
      buf_[head_].~T();
      head_ = (head_ + 1) & (cap_ - 1);
      --size_;
    }
    head_ = 0;
  }

 private:
  void grow() {
    std::size_t ncap = cap_ ? cap_ * 2 : 16;
    T* nbuf = std::allocator<T>().allocate(ncap);
    std::size_t moved = 0;
    try {
      for (; moved < size_; ++moved)
        ::new (static_cast<void*>(nbuf + moved)) T(std::move_if_noexcept(buf_[(head_ + moved) & (cap_ - 1)]));
    } catch (...) {
      for (std::size_t i = 0; i < moved; ++i) nbuf[i].~T();
      std::allocator<T>().deallocate(nbuf, ncap);
      throw;
    }
    for (std::size_t i = 0; i < size_; ++i) buf_[(head_ + i) & (cap_ - 1)].~T();
    if (buf_) std::allocator<T>().deallocate(buf_, cap_);
    buf_ = nbuf;
    cap_ = ncap;
    head_ = 0;
  }

  T* buf_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

/// Storage policies. `push` adds a new item, `pop` removes the next one to get, `unget` puts back
/// an item so that it is the next one to get again (as far as the order allows).
template <class T>
class FifoStore {
 public:
  bool empty() const noexcept { return r_.empty(); }
  std::size_t size() const noexcept { return r_.size(); }
  void push(T&& v) { r_.push_back(std::move(v)); }
  T pop() { return r_.pop_front(); }
  void unget(T&& v) { r_.push_front(std::move(v)); }
  void clear() noexcept { r_.clear(); }

 private:
  Ring<T> r_;
};

template <class T>
class LifoStore {
 public:
  bool empty() const noexcept { return v_.empty(); }
  std::size_t size() const noexcept { return v_.size(); }
  void push(T&& v) { v_.push_back(std::move(v)); }
  T pop() {
    T v(std::move(v_.back()));
    v_.pop_back();
    return v;
  }
  void unget(T&& v) { v_.push_back(std::move(v)); }
  void clear() noexcept { v_.clear(); }

 private:
  std::vector<T> v_;
};

/// A binary min-heap by `Compare`, like Python's heapq: pop() gives the smallest item.
template <class T, class Compare>
class HeapStore {
 public:
  explicit HeapStore(Compare cmp = Compare()) : cmp_{std::move(cmp)} {}
  bool empty() const noexcept { return v_.empty(); }
  std::size_t size() const noexcept { return v_.size(); }
  void push(T&& v) {
    v_.push_back(std::move(v));
    std::push_heap(v_.begin(), v_.end(), cmp_);
  }
  T pop() {
    std::pop_heap(v_.begin(), v_.end(), cmp_);
    T v(std::move(v_.back()));
    v_.pop_back();
    return v;
  }
  void unget(T&& v) { push(std::move(v)); }
  void clear() noexcept { v_.clear(); }

 private:
  // std::*_heap build a max-heap for their comparator; reversing it gives heapq's min-heap.
  struct Greater {
    Compare c;
    bool operator()(const T& a, const T& b) { return c(b, a); }
  };
  std::vector<T> v_;
  Greater cmp_;
};

/// The queue logic, shared by the three kinds.
template <class T, class Store>
class BasicQueue {
  static_assert(std::is_move_constructible_v<T>, "queue items must be movable");
  static_assert(!std::is_reference_v<T>, "queue items cannot be references");

 public:
  using value_type = T;

  /// co_await q.get(): the next item.
  class GetAwaiter final : public Waiter {
   public:
    using is_asyncio_awaitable = void;
    explicit GetAwaiter(BasicQueue& q) noexcept : q_(&q) {}
    GetAwaiter(GetAwaiter&&) = default;
    ~GetAwaiter() {
      // The task was destroyed after an item was handed to it: the item goes back.
      if (state_ == State::granted) {
        unlink();
        if (!orphaned()) q_->return_item(std::move(*item_));
      }
    }
    bool await_ready() {
      if (!q_->store_.empty()) {
        item_.emplace(q_->take());
        return true;
      }
      if (q_->shutdown_) throw QueueShutDown();
      return false;
    }
    void await_suspend(std::coroutine_handle<> h) { suspend(q_->getters_, h, "get from a Queue"); }
    WaitTarget wait_target() const noexcept override { return {"queue", nullptr, 0}; }  // 0: get
    T await_resume() {
      switch (state_) {
        case State::idle:
          break;  // taken in await_ready
        case State::granted:
          unlink();
          state_ = State::done;
          try {
            task_->resume_checked();
          } catch (...) {
            if (!orphaned()) q_->return_item(std::move(*item_));  // never lose a handed item
            throw;
          }
          if (!orphaned()) q_->item_collected();
          break;
        case State::closed:
          state_ = State::done;
          task_->resume_checked();
          throw QueueShutDown();
        default:  // aborted
          state_ = State::done;
          task_->resume_checked(true);
          break;
      }
      return std::move(*item_);
    }

   private:
    friend class BasicQueue;
    BasicQueue* q_;
    std::optional<T> item_;
  };

  /// co_await q.put(item).
  class PutAwaiter final : public Waiter {
   public:
    using is_asyncio_awaitable = void;
    PutAwaiter(BasicQueue& q, T&& item) : q_(&q), item_(std::move(item)) {}
    PutAwaiter(PutAwaiter&&) = default;
    ~PutAwaiter() {
      // Destroyed after a slot was reserved for it: give the slot to the next putter.
      if (state_ == State::granted) {
        unlink();
        if (!orphaned()) q_->release_slot();
      }
    }
    bool await_ready() {
      if (q_->shutdown_) throw QueueShutDown();
      if (q_->full() || !q_->putters_.empty()) return false;
      q_->deliver(std::move(item_));
      return true;
    }
    void await_suspend(std::coroutine_handle<> h) { suspend(q_->putters_, h, "put into a Queue"); }
    WaitTarget wait_target() const noexcept override { return {"queue", nullptr, 1}; }  // 1: put
    void await_resume() {
      switch (state_) {
        case State::idle:
          return;
        case State::granted: {
          unlink();
          state_ = State::done;
          if (orphaned()) {
            task_->resume_checked();
            return;
          }
          try {
            task_->resume_checked();
          } catch (...) {
            q_->release_slot();  // the reserved slot goes to the next putter; no item is put
            throw;
          }
          --q_->reserved_;
          if (q_->shutdown_) {
            q_->admit_putters();
            throw QueueShutDown();
          }
          q_->deliver(std::move(item_));
          return;
        }
        case State::closed:
          state_ = State::done;
          task_->resume_checked();
          throw QueueShutDown();
        default:
          state_ = State::done;
          task_->resume_checked(true);
          return;
      }
    }

   private:
    BasicQueue* q_;
    T item_;
  };

  /// `maxsize` <= 0 means unbounded, as in Python; `store_args` construct the storage.
  template <class... A>
  explicit BasicQueue(std::ptrdiff_t maxsize, A&&... store_args)
      : store_(std::forward<A>(store_args)...), maxsize_(maxsize), bound_(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0) {
    finished_.set();
  }
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;
  ~BasicQueue() {
    // Waiters still parked (or woken, not yet resumed) keep pointing at us: make them forget.
    getters_.orphan_all();
    putters_.orphan_all();
    handed_getters_.orphan_all();
    granted_putters_.orphan_all();
  }

  /// The maxsize given, as Python's `q.maxsize` (0 or negative: unbounded).
  std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
  /// Items in the queue waiting to be taken. (An item handed to a woken getter has left the
  /// queue, though it keeps its slot until that getter runs.)
  std::size_t qsize() const noexcept { return store_.size(); }
  /// True if get_nowait() would raise QueueEmpty.
  bool empty() const noexcept { return store_.empty(); }
  /// True if put_nowait() would raise QueueFull: every slot holds an item, or is reserved for an
  /// item handed to a getter or a putter that has not run yet.
  bool full() const noexcept { return bound_ > 0 && used() >= bound_; }

  /// Puts the item, waiting for a free slot if the queue is full. QueueShutDown after shutdown().
  /// If the put is cancelled, the item is not put (it is destroyed with the awaiter).
  [[nodiscard]] PutAwaiter put(T item) { return PutAwaiter(*this, std::move(item)); }
  /// Puts without waiting: QueueFull if there is no free slot, QueueShutDown after shutdown().
  void put_nowait(T item) {
    if (shutdown_) throw QueueShutDown();
    if (full()) throw QueueFull();
    deliver(std::move(item));
  }
  /// Removes and returns the next item, waiting if the queue is empty. After shutdown() it
  /// returns what is left, then raises QueueShutDown (at once after shutdown(true)).
  [[nodiscard]] GetAwaiter get() noexcept { return GetAwaiter(*this); }
  /// Removes and returns the next item without waiting: QueueEmpty (QueueShutDown if shut down).
  T get_nowait() {
    if (store_.empty()) {
      if (shutdown_) throw QueueShutDown();
      throw QueueEmpty();
    }
    return take();
  }

  /// A consumer says that an item it got is processed. ValueError if called more often than
  /// items were put.
  void task_done() {
    if (unfinished_ == 0) throw ValueError("task_done() called too many times");
    if (--unfinished_ == 0) finished_.set();
  }
  /// Waits until every item put so far has been got and marked task_done().
  [[nodiscard]] EventWait join() noexcept { return finished_.wait(); }

  /// Python 3.13: puts (waiting or not) raise QueueShutDown from now on, and so do gets once the
  /// queue is empty; blocked putters and getters wake up and raise it. `immediate` also drops
  /// the items still queued (and those handed to getters that have not run yet), counting each as
  /// done for join(), so gets raise at once.
  void shutdown(bool immediate = false) {
    shutdown_ = true;
    if (immediate) {
      while (!store_.empty()) {
        store_.pop();
        if (unfinished_ > 0) --unfinished_;
      }
      while (Waiter* w = handed_getters_.pop_front()) {
        auto* g = static_cast<GetAwaiter*>(w);
        g->item_.reset();
        --in_flight_;
        if (unfinished_ > 0) --unfinished_;
        g->state_ = Waiter::State::closed;
      }
      if (unfinished_ == 0) finished_.set();
    }
    while (Waiter* w = getters_.pop_front()) w->close();
    while (Waiter* w = putters_.pop_front()) w->close();
  }
  /// True once shutdown() was called.
  bool is_shut_down() const noexcept { return shutdown_; }

 private:
  std::size_t used() const noexcept { return store_.size() + in_flight_ + reserved_; }

  /// A new item enters the queue: straight to the first waiting getter, else into storage.
  void deliver(T&& item) {
    ++unfinished_;
    finished_.clear();
    if (Waiter* w = getters_.pop_front()) {
      auto* g = static_cast<GetAwaiter*>(w);
      g->item_.emplace(std::move(item));
      ++in_flight_;
      g->grant(&handed_getters_);
    } else {
      store_.push(std::move(item));
    }
  }
  /// Takes the next stored item; the freed slot goes to the first waiting putter.
  T take() {
    T item = store_.pop();
    admit_putters();
    return item;
  }
  /// Reserves free slots for waiting putters, first come first served.
  void admit_putters() noexcept {
    while (!putters_.empty() && !full()) {
      Waiter* w = putters_.pop_front();
      ++reserved_;
      w->grant(&granted_putters_);
    }
  }
  /// A handed item reached its getter: its slot is free now.
  void item_collected() noexcept {
    --in_flight_;
    admit_putters();
  }
  /// A getter that was handed `item` was cancelled before it could run.
  void return_item(T&& item) {
    if (Waiter* w = getters_.pop_front()) {
      auto* g = static_cast<GetAwaiter*>(w);
      g->item_.emplace(std::move(item));  // stays in flight, for the next getter
      g->grant(&handed_getters_);
    } else {
      --in_flight_;
      store_.unget(std::move(item));
    }
  }
  /// A putter that had a slot reserved will not use it.
  void release_slot() noexcept {
    --reserved_;
    admit_putters();
  }

  Store store_;
  std::ptrdiff_t maxsize_;
  std::size_t bound_;  // 0: unbounded
  std::size_t in_flight_ = 0;  // items handed to getters that have not run yet
  std::size_t reserved_ = 0;   // slots handed to putters that have not run yet
  std::size_t unfinished_ = 0;
  bool shutdown_ = false;
  Event finished_;
  WaitList getters_, putters_;
  WaitList handed_getters_, granted_putters_;
};

}  // namespace detail

/// A first in, first out queue (Python's asyncio.Queue).
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
 public:
  /// `maxsize` <= 0: unbounded (Python's default 0).
  explicit Queue(std::ptrdiff_t maxsize = 0) : detail::BasicQueue<T, detail::FifoStore<T>>(maxsize) {}
};

/// A last in, first out queue (Python's asyncio.LifoQueue).
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
 public:
  /// A LIFO queue holding at most `maxsize` items (<= 0: unbounded, as Python).
  explicit LifoQueue(std::ptrdiff_t maxsize = 0) : detail::BasicQueue<T, detail::LifoStore<T>>(maxsize) {}
};

/// A queue that gives the smallest item first, by `Compare` (Python's asyncio.PriorityQueue,
/// which uses heapq; put (priority, data) pairs — std::pair compares like Python's tuples).
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
 public:
  /// A queue that hands out the smallest item first (by `cmp`), at most `maxsize` (<= 0: unbounded, as Python).
  explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare cmp = Compare())
      : detail::BasicQueue<T, detail::HeapStore<T, Compare>>(maxsize, std::move(cmp)) {}
};

}  // namespace asyncio
#pragma GCC visibility pop
