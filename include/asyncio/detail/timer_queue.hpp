// SPDX-License-Identifier: MIT
// The loop's timers. One heap of a million timers spends its time in cache misses: each pop sifts
// ten levels of a 16 MB array, about a microsecond, which is all the time there is when a million
// timers fall due within a second. Most timers are due soon, so the queue keeps them in three
// parts, each holding only later deadlines than the part before it:
//
//   near   a TimerHeap of everything due before slot `base_` (the slot the clock is in, overdue
//          timers, and timers scheduled for it);
//   wheel  kSlots unsorted buckets, one per slot of 2^20 ns (~1 ms) from `base_` on (~4.4 s);
//   far    a TimerHeap of everything later than the wheel reaches.
//
// Scheduling into the wheel is an append. As the clock passes a slot (advance()), that slot's
// bucket moves into the near heap, which therefore holds about a slot's worth of timers and stays
// in cache. The order is exactly one heap's: by deadline, ties in scheduling order, because the
// parts never overlap in time. Cancelling takes a node out of whichever part holds it (a
// swap-remove in a bucket), so cancelled timers never pile up.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "asyncio/detail/timer_heap.hpp"

namespace asyncio::detail {

class TimerQueue {
 public:
  static constexpr int kSlotShift = 20;
  static constexpr std::size_t kSlots = 4096;

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  /// Schedules `node` (its `when` set, not scheduled yet).
  void push(TimerNode* node) {
    node->seq = seq_++;
    place(node);
    ++size_;
  }

  /// Unschedules a scheduled node.
  void remove(TimerNode* node) noexcept {
    if (node->where == kNear) {
      near_.remove(node);
    } else if (node->where == kFar) {
      far_.remove(node);
    } else {
      remove_from_wheel(node);
    }
    --size_;
  }

  /// A deadline no later than the earliest timer's; exact unless a timer was cancelled out of the
  /// first wheel slot in use (then the loop wakes early once). Only when !empty().
  std::int64_t next_deadline() const noexcept {
    if (!near_.empty()) return near_.next_deadline();
    if (wheel_count_ != 0) return buckets_[index_of(first_wheel_slot())].min_when;
    return far_.next_deadline();
  }

  /// Brings every timer whose slot the clock (`now`) has reached into the near heap; pop_due()
  /// wants this first.
  void advance(std::int64_t now) { advance_base(slot_of(now) + 1); }

  /// The earliest timer if it is due at `now`, out of the queue; else null.
  TimerNode* pop_due(std::int64_t now) noexcept {
    if (near_.empty() || near_.next_deadline() > now) return nullptr;
    --size_;
    return near_.pop();
  }

  /// The earliest timer, due or not, out of the queue. Only when !empty().
  TimerNode* pop() {
    if (near_.empty()) advance_base(first_slot() + 1);
    --size_;
    return near_.pop();
  }

 private:
  enum Part : std::uint8_t { kNear = 1, kWheel = 2, kFar = 3 };
  static constexpr std::size_t kMask = kSlots - 1;
  static constexpr std::size_t kWords = kSlots / 64;
  static constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();

  struct Bucket {
    std::vector<TimerNode*> nodes;
    std::int64_t min_when = kNoDeadline;  // a lower bound once a node has been removed
  };

  static std::int64_t slot_of(std::int64_t when) noexcept { return when >> kSlotShift; }
  static std::size_t index_of(std::int64_t slot) noexcept { return static_cast<std::size_t>(slot) & kMask; }

  void place(TimerNode* node) {
    std::int64_t slot = slot_of(node->when);
    if (slot < base_) {
      node->where = kNear;
      near_.push(node);
    } else if (slot < base_ + static_cast<std::int64_t>(kSlots)) {
      add_to_wheel(node, slot);
    } else {
      node->where = kFar;
      far_.push(node);
    }
  }

  Bucket& bucket(std::int64_t slot) {
    if (!buckets_) buckets_ = std::make_unique<Bucket[]>(kSlots);
    return buckets_[index_of(slot)];
  }

  void add_to_wheel(TimerNode* node, std::int64_t slot) {
    Bucket& b = bucket(slot);
    b.nodes.push_back(node);
    node->where = kWheel;
    node->index = static_cast<std::uint32_t>(b.nodes.size() - 1);
    if (node->when < b.min_when) b.min_when = node->when;
    occupied_[index_of(slot) / 64] |= std::uint64_t{1} << (index_of(slot) % 64);
    ++wheel_count_;
  }

  void remove_from_wheel(TimerNode* node) noexcept {
    std::size_t i = index_of(slot_of(node->when));
    Bucket& b = buckets_[i];
    TimerNode* last = b.nodes.back();
    b.nodes[node->index] = last;
    last->index = node->index;
    b.nodes.pop_back();
    node->index = TimerNode::npos;
    --wheel_count_;
    if (b.nodes.empty()) release_bucket(i);
  }

  void release_bucket(std::size_t i) noexcept {
    buckets_[i].min_when = kNoDeadline;
    occupied_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
  }

  // The first slot the wheel holds a timer for; only when wheel_count_ != 0.
  std::int64_t first_wheel_slot() const noexcept {
    std::size_t start = index_of(base_);
    std::size_t word = start / 64;
    std::uint64_t bits = occupied_[word] & (~std::uint64_t{0} << (start % 64));
    while (bits == 0) {  // ends: some bit is set; wrapping round reaches the bits below start
      word = (word + 1) % kWords;
      bits = occupied_[word];
    }
    std::size_t index = word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
    return base_ + static_cast<std::int64_t>((index - start) & kMask);
  }

  // The first slot holding a timer outside the near heap; only when near_ is empty and !empty().
  std::int64_t first_slot() const noexcept {
    return wheel_count_ != 0 ? first_wheel_slot() : slot_of(far_.next_deadline());
  }

  // Moves the boundary between near and wheel to `new_base` (never backwards): the wheel's slots
  // below it go to the near heap, the far heap's timers the wheel now reaches go to the wheel.
  void advance_base(std::int64_t new_base) {
    if (new_base <= base_) return;
    while (wheel_count_ != 0) {
      std::int64_t slot = first_wheel_slot();
      if (slot >= new_base) break;
      move_bucket_to_near(slot);
      base_ = slot + 1;  // every slot below is in the near heap now
    }
    base_ = new_base;
    while (!far_.empty() && slot_of(far_.next_deadline()) < base_ + static_cast<std::int64_t>(kSlots)) {
      TimerNode* node = far_.top();
      std::int64_t slot = slot_of(node->when);
      if (slot < base_) {
        near_.reserve_more(1);
      } else {
        reserve_more(bucket(slot).nodes, 1);
      }
      far_.remove(node);  // nothing left that can throw before it is placed again
      place(node);
    }
  }

  void move_bucket_to_near(std::int64_t slot) {
    std::size_t i = index_of(slot);
    Bucket& b = buckets_[i];
    near_.reserve_more(b.nodes.size());  // no throw halfway through the move
    for (TimerNode* node : b.nodes) {
      node->where = kNear;
      near_.push(node);
    }
    wheel_count_ -= b.nodes.size();
    b.nodes.clear();  // keeps its capacity: the slot's next turn allocates nothing
    release_bucket(i);
  }

  TimerHeap near_;
  TimerHeap far_;
  std::unique_ptr<Bucket[]> buckets_;  // allocated with the first timer the wheel takes
  std::uint64_t occupied_[kWords] = {};
  std::size_t wheel_count_ = 0;
  std::size_t size_ = 0;
  std::int64_t base_ = std::numeric_limits<std::int64_t>::min();
  std::uint64_t seq_ = 0;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
