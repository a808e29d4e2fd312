// SPDX-License-Identifier: MIT
// A growable FIFO ring of trivially copyable values: the loop's ready queue.
// It never shrinks, so after warm-up pushes and pops allocate nothing.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace asyncio::detail {

template <class T>
class RingQueue {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;
  ~RingQueue() { std::free(buf_); }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  void push(T v) {
    if (size_ == cap_) grow();
    buf_[(head_ + size_) & (cap_ - 1)] = v;
    ++size_;
  }
  T pop() noexcept {
    T v = buf_[head_];
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return v;
  }

 private:
  void grow() {
    std::size_t ncap = cap_ ? cap_ * 2 : 256;
    T* nbuf = static_cast<T*>(std::malloc(ncap * sizeof(T)));
    if (!nbuf) throw std::bad_alloc();
    for (std::size_t i = 0; i < size_; ++i) nbuf[i] = buf_[(head_ + i) & (cap_ - 1)];
    std::free(buf_);
    buf_ = nbuf;
    cap_ = ncap;
    head_ = 0;
  }

  T* buf_ = nullptr;
  std::size_t cap_ = 0;  // always a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
