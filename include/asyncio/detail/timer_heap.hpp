// SPDX-License-Identifier: MIT
// A 4-ary min-heap of timers ordered by (deadline, sequence) whose nodes know their own position,
// so cancelling a timer removes it at once in O(log n). Cancelled timers therefore never pile up
// (Python's heap keeps them until they are half the heap; ours has none). The loop keeps its
// timers in a TimerQueue (timer_queue.hpp), which uses two of these.
//
// Entries are 16 bytes (deadline + node) and four children share a cache line. The tie-breaking
// sequence number lives in the node and is read only when two deadlines are equal.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <cstdint>
#include <vector>

namespace asyncio::detail {

/// A timer registration. It lives wherever its owner wants (inside an awaiter in a coroutine
/// frame, inside a TimerHandle) and must be removed from the heap before it is destroyed.
struct TimerNode {
  static constexpr std::uint32_t npos = static_cast<std::uint32_t>(-1);
  /// Called by the loop when the deadline has passed; the node is already out of the queue.
  void (*on_expire)(TimerNode*) = nullptr;
  std::int64_t when = 0;  // loop clock, nanoseconds
  std::uint64_t seq = 0;  // set by TimerQueue::push: equal deadlines fire in scheduling order
  std::uint32_t index = npos;  // position in the heap or wheel bucket holding the node
  std::uint8_t where = 0;      // which part of a TimerQueue holds it (TimerQueue::Part)
  bool scheduled() const noexcept { return index != npos; }
};

/// Makes room in `v` for `extra` more elements, growing geometrically as push_back does (an exact
/// reserve per call would make repeated calls quadratic).
template <class T>
void reserve_more(std::vector<T>& v, std::size_t extra) {
  if (v.capacity() - v.size() < extra) v.reserve(v.size() + (extra > v.size() ? extra : v.size()));
}

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  /// Deadline of the earliest timer; only when !empty().
  std::int64_t next_deadline() const noexcept { return heap_.front().when; }
  TimerNode* top() const noexcept { return heap_.front().node; }
  /// Makes room for `extra` more pushes that cannot throw.
  void reserve_more(std::size_t extra) { detail::reserve_more(heap_, extra); }

  /// Adds `node`, whose `seq` the caller has set.
  void push(TimerNode* node) {
    heap_.push_back(Entry{node->when, node});
    node->index = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(heap_.size() - 1);
  }
  /// Removes any scheduled node (the top included).
  void remove(TimerNode* node) noexcept {
    std::size_t i = node->index;
    node->index = TimerNode::npos;
    std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i].node->index = static_cast<std::uint32_t>(i);
      heap_.pop_back();
      if (i > 0 && less(heap_[i], heap_[parent(i)]))
        sift_up(i);
      else
        sift_down(i);
    } else {
      heap_.pop_back();
    }
  }
  TimerNode* pop() noexcept {
    TimerNode* n = heap_.front().node;
    remove(n);
    return n;
  }

 private:
  static constexpr std::size_t kArity = 4;
  struct Entry {
    std::int64_t when;
    TimerNode* node;
  };
  static std::size_t parent(std::size_t i) noexcept { return (i - 1) / kArity; }
  static bool less(const Entry& a, const Entry& b) noexcept {
    return a.when < b.when || (a.when == b.when && a.node->seq < b.node->seq);
  }
  void place(std::size_t i, const Entry& e) noexcept {
    heap_[i] = e;
    e.node->index = static_cast<std::uint32_t>(i);
  }
  void sift_up(std::size_t i) noexcept {
    Entry e = heap_[i];
    while (i > 0) {
      std::size_t p = parent(i);
      if (!less(e, heap_[p])) break;
      place(i, heap_[p]);
      i = p;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) noexcept {
    Entry e = heap_[i];
    std::size_t n = heap_.size();
    for (;;) {
      std::size_t first = kArity * i + 1;
      if (first >= n) break;
      std::size_t best = first;
      std::size_t end = first + kArity < n ? first + kArity : n;
      for (std::size_t c = first + 1; c < end; ++c)
        if (less(heap_[c], heap_[best])) best = c;
      if (!less(heap_[best], e)) break;
      place(i, heap_[best]);
      i = best;
    }
    place(i, e);
  }

  std::vector<Entry> heap_;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
