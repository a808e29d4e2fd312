// SPDX-License-Identifier: MIT
// An intrusive doubly linked FIFO: the links live in the elements, so queueing allocates nothing.
// The waiter lists of the locks, queues and streams are built on it.
//
//   struct Node { Node* prev_ = nullptr; Node* next_ = nullptr; };   // (befriend the FIFO)
//   IntrusiveFifo<Node> fifo;  fifo.push_back(&n);  fifo.remove(&n);
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

namespace asyncio::detail {

/// Elements of type T carry `T* prev_` and `T* next_` (accessible to this class); an element is
/// in at most one FIFO at a time, and the FIFO does not own it.
template <class T>
class IntrusiveFifo {
 public:
  IntrusiveFifo() noexcept = default;
  IntrusiveFifo(const IntrusiveFifo&) = delete;
  IntrusiveFifo& operator=(const IntrusiveFifo&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  T* front() const noexcept { return head_; }

  void push_back(T* e) noexcept {
    e->prev_ = tail_;
    e->next_ = nullptr;
    if (tail_)
      tail_->next_ = e;
    else
      head_ = e;
    tail_ = e;
  }
  /// Unlinks `e`, which must be in this FIFO.
  void remove(T* e) noexcept {
    if (e->prev_)
      e->prev_->next_ = e->next_;
    else
      head_ = e->next_;
    if (e->next_)
      e->next_->prev_ = e->prev_;
    else
      tail_ = e->prev_;
    e->prev_ = e->next_ = nullptr;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
