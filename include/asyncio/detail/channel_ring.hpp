// SPDX-License-Identifier: MIT
// ChannelRing<T>: the storage of a Channel<T>. A bounded ring that any thread pushes to and pops
// from without a lock (Dmitry Vyukov's bounded MPMC queue: a sequence number per cell says
// whose turn the cell is), which the channel can also lock: lock() sets a bit in both position
// counters, after which no lock-free push or pop starts, and the lock's holder works on the ring
// alone (asyncio/channel.hpp says when).
//
// Why lock-free: a producer and a consumer that take one lock for every item pass the lock's
// cache line between their CPUs twice per item; here each side keeps its own position counter,
// and only the cells travel.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "asyncio/detail/adaptive_mutex.hpp"

namespace asyncio::detail {

/// Keeps counters that different threads write off each other's cache lines.
inline constexpr std::size_t kCacheLine = 64;

template <class T>
class ChannelRing {
 public:
  /// Room for `capacity` items (at least 1), allocated once: a power of two of cells, at least
  /// two (with one cell, "filled" and "emptied" would be the same sequence number).
  explicit ChannelRing(std::size_t capacity)
      : cap_(capacity),
        cells_n_(std::max<std::size_t>(2, std::bit_ceil(capacity))),
        cells_(std::allocator<Cell>().allocate(cells_n_)) {
    // Positions start at one lap, not 0, so that push_front (below the first position) never
    // wraps around: the ring never holds more than a lap of items pushed in front of it.
    for (std::size_t pos = cells_n_; pos < 2 * cells_n_; ++pos) {
      ::new (static_cast<void*>(&cells_[index(pos)])) Cell{};
      cells_[index(pos)].seq.store(pos, std::memory_order_relaxed);
    }
    enq_.store(cells_n_, std::memory_order_relaxed);
    deq_.store(cells_n_, std::memory_order_relaxed);
  }
  ChannelRing(const ChannelRing&) = delete;
  ChannelRing& operator=(const ChannelRing&) = delete;
  /// Destroys the items left (no operation may be running).
  ~ChannelRing() {
    lock();
    while (size() > 0) pop_front().~T();
    for (std::size_t i = 0; i < cells_n_; ++i) cells_[i].~Cell();
    std::allocator<Cell>().deallocate(cells_, cells_n_);
  }

  // ---- lock-free: any thread, any time ----------------------------------------------------------

  /// Moves `item` in and returns true; or returns false (`item` untouched): the ring is full or
  /// locked.
  bool try_push(T& item) noexcept {
    std::size_t pos = enq_.load(std::memory_order_acquire);  // then held_out_ is the unlocker's
    for (int retries = 0;;) {
      if (pos & kLocked) return false;
      // More cells than room: the capacity (or what items held outside leave of it) is the bound.
      std::size_t out = held_out_.load(std::memory_order_relaxed);
      if ((cells_n_ != cap_ || out != 0) && pos - (deq_.load(std::memory_order_relaxed) & ~kLocked) + out >= cap_)
        return false;
      Cell& c = cells_[index(pos)];
      std::size_t seq = c.seq.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq - pos);
      if (diff == 0) {
        // Fails if another push took the position, or the ring was locked meanwhile.
        if (enq_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          ::new (static_cast<void*>(c.storage)) T(std::move(item));
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        // Full, or the cell still being emptied by a pop that took it: that pop is a few
        // instructions from done, so look again a few times rather than take the slow path.
        std::size_t deq = deq_.load(std::memory_order_relaxed) & ~kLocked;
        if (pos - deq >= cells_n_ || retries > kRetries) return false;
        spin_backoff(retries++);
        pos = enq_.load(std::memory_order_relaxed);
      } else {
        pos = enq_.load(std::memory_order_relaxed);
      }
    }
  }
  /// Moves the oldest item into `out` and returns true; or returns false: the ring is empty or
  /// locked.
  bool try_pop(std::optional<T>& out) noexcept {
    std::size_t pos = deq_.load(std::memory_order_relaxed);
    for (int retries = 0;;) {
      if (pos & kLocked) return false;
      Cell& c = cells_[index(pos)];
      std::size_t seq = c.seq.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq - (pos + 1));
      if (diff == 0) {
        // Acquire: the position can come back (an item given back goes in front of the oldest,
        // push_front), refilling its cell with the same sequence number after `seq` was read.
        // The taking of the position then pairs with the unlock() that followed the refill, so
        // the item read below is the refilled one on every CPU, not what the cell held before.
        if (deq_.compare_exchange_weak(pos, pos + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
          T* p = c.item();
          out.emplace(std::move(*p));
          p->~T();
          c.seq.store(pos + cells_n_, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        // Empty, or the cell still being filled by a push that took it: look again.
        std::size_t enq = enq_.load(std::memory_order_relaxed) & ~kLocked;
        if (enq == pos || retries > kRetries) return false;
        spin_backoff(retries++);
        pos = deq_.load(std::memory_order_relaxed);
      } else {
        pos = deq_.load(std::memory_order_relaxed);
      }
    }
  }
  /// Items in the ring (those a push has taken a position for included), as a snapshot; exact
  /// while locked.
  std::size_t size() const noexcept {
    std::size_t deq = deq_.load(std::memory_order_acquire) & ~kLocked;  // first: pops follow pushes
    std::size_t enq = enq_.load(std::memory_order_acquire) & ~kLocked;
    return enq - deq < cap_ ? enq - deq : cap_;  // pushes between the two loads: at most full
  }

  // ---- locking: only the channel's lock holder ---------------------------------------------------

  /// From now on no lock-free push or pop starts (those that took a position finish on their
  /// own; the operations below wait for the one cell they need).
  void lock() noexcept {
    enq_.fetch_or(kLocked, std::memory_order_acq_rel);
    deq_.fetch_or(kLocked, std::memory_order_acq_rel);
  }
  /// Lock-free pushes and pops may start again.
  void unlock() noexcept {
    deq_.fetch_and(~kLocked, std::memory_order_release);
    enq_.fetch_and(~kLocked, std::memory_order_release);
  }
  /// The most items it holds.
  std::size_t capacity() const noexcept { return cap_; }
  /// True between lock() and unlock().
  bool locked() const noexcept { return (enq_.load(std::memory_order_relaxed) & kLocked) != 0; }
  /// While locked: items of the channel held outside the ring (handed to receivers that have not
  /// run yet), which count against the capacity of lock-free pushes too.
  void set_held_out(std::size_t n) noexcept { held_out_.store(n, std::memory_order_relaxed); }

  // ---- while locked ------------------------------------------------------------------------------

  /// Appends; the ring must not be full.
  void push_back(T&& item) noexcept {
    std::size_t pos = enq_.load(std::memory_order_relaxed) & ~kLocked;
    Cell& c = await_cell(pos, pos);  // emptied by the pop a lap before
    ::new (static_cast<void*>(c.storage)) T(std::move(item));
    c.seq.store(pos + 1, std::memory_order_release);
    enq_.store((pos + 1) | kLocked, std::memory_order_relaxed);
  }
  /// Puts `item` before the oldest one (an item given back); the ring must not be full.
  void push_front(T&& item) noexcept {
    std::size_t pos = (deq_.load(std::memory_order_relaxed) & ~kLocked) - 1;
    Cell& c = await_cell(pos, pos + cells_n_);  // emptied by the pop of `pos`
    ::new (static_cast<void*>(c.storage)) T(std::move(item));
    c.seq.store(pos + 1, std::memory_order_release);
    deq_.store(pos | kLocked, std::memory_order_relaxed);
  }
  /// Removes and returns the oldest item; the ring must not be empty.
  T pop_front() noexcept {
    std::size_t pos = deq_.load(std::memory_order_relaxed) & ~kLocked;
    Cell& c = await_cell(pos, pos + 1);  // filled by its push
    T* p = c.item();
    T v(std::move(*p));
    p->~T();
    c.seq.store(pos + cells_n_, std::memory_order_release);
    deq_.store((pos + 1) | kLocked, std::memory_order_relaxed);
    return v;
  }

 private:
  struct Cell {
    std::atomic<std::size_t> seq{0};
    alignas(T) unsigned char storage[sizeof(T)];
    T* item() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }
  };
  static constexpr std::size_t kLocked = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);
  static constexpr int kRetries = 64;

  std::size_t index(std::size_t pos) const noexcept { return pos & (cells_n_ - 1); }
  /// The cell of `pos` once its sequence number is `seq`: a lock-free push or pop that took the
  /// position before lock() may still be moving its item.
  Cell& await_cell(std::size_t pos, std::size_t seq) noexcept {
    Cell& c = cells_[index(pos)];
    for (int spins = 0; c.seq.load(std::memory_order_acquire) != seq; ++spins) spin_backoff(spins);
    return c;
  }

  std::size_t cap_;      // the most items it holds
  std::size_t cells_n_;  // a power of two, at least cap_ and 2
  std::atomic<std::size_t> held_out_{0};  // see set_held_out; read-mostly
  Cell* cells_;
  alignas(kCacheLine) std::atomic<std::size_t> enq_{0};  // the next push's position | kLocked
  alignas(kCacheLine) std::atomic<std::size_t> deq_{0};  // the next pop's position | kLocked
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
