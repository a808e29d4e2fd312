// SPDX-License-Identifier: MIT
// A growable byte FIFO for transports and streams: append at the back, consume from the front.
//
// Consuming only moves an offset; the bytes left are moved to the front when the free space at
// the back runs short, and the storage is kept. A connection that has reached its working size
// therefore never allocates again (the "no allocation in the steady state" rule of transports).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace asyncio::detail {

class ByteBuffer {
 public:
  ByteBuffer() noexcept = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }
  std::size_t capacity() const noexcept { return cap_; }
  const char* data() const noexcept { return data_.get() + head_; }
  char* data() noexcept { return data_.get() + head_; }
  std::string_view view() const noexcept { return {data(), size()}; }

  void append(std::string_view s) {
    if (s.empty()) return;
    reserve_back(s.size());
    std::memcpy(data_.get() + tail_, s.data(), s.size());
    tail_ += s.size();
  }
  /// Drops `n` bytes from the front.
  void consume(std::size_t n) noexcept {
    head_ += n;
    if (head_ >= tail_) head_ = tail_ = 0;  // empty: start over at the front, for free
  }
  void clear() noexcept { head_ = tail_ = 0; }

  /// Free space at the back of at least `min` bytes (compacting or growing as needed), for a
  /// read straight into the buffer; commit() what was written.
  std::span<char> prepare(std::size_t min) {
    reserve_back(min);
    return {data_.get() + tail_, cap_ - tail_};
  }
  void commit(std::size_t n) noexcept { tail_ += n; }

  /// Gives the memory back (a connection that is finished with a huge burst).
  void shrink() noexcept {
    if (empty()) {
      data_.reset();
      cap_ = head_ = tail_ = 0;
    }
  }

 private:
  void reserve_back(std::size_t n) {
    if (cap_ - tail_ >= n) return;
    std::size_t used = size();
    if (head_ > 0 && cap_ - used >= n && head_ >= used) {
      // Enough room once the live bytes move to the front (cheap: they are fewer than the gap).
      std::memcpy(data_.get(), data_.get() + head_, used);
      head_ = 0;
      tail_ = used;
      return;
    }
    if (head_ > 0 && cap_ - used >= n) {
      std::memmove(data_.get(), data_.get() + head_, used);
      head_ = 0;
      tail_ = used;
      return;
    }
    std::size_t want = cap_ ? cap_ * 2 : 4096;
    while (want < used + n) want *= 2;
    std::unique_ptr<char[]> fresh(new char[want]);
    if (used) std::memcpy(fresh.get(), data_.get() + head_, used);
    data_ = std::move(fresh);
    cap_ = want;
    head_ = 0;
    tail_ = used;
  }

  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
