// SPDX-License-Identifier: MIT
// Shared state behind Future<T> and Task<T>.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "asyncio/errors.hpp"

namespace asyncio {
class EventLoop;
}

namespace asyncio::detail {

class FutureStateBase;

/// A completion callback. Internal callbacks (a task waiting, gather counting) run synchronously
/// when the future completes and must only do bookkeeping or schedule work. `drop`, if set,
/// frees `arg` when the callback is removed or the future dies without firing it.
struct DoneCallback {
  void (*fn)(void* arg, FutureStateBase& future);
  void* arg;
  void (*drop)(void* arg) noexcept = nullptr;
  std::uint64_t id = 0;
};

class FutureStateBase {
 public:
  enum class Status : std::uint8_t { pending, cancelled, finished };

  explicit FutureStateBase(EventLoop* loop) noexcept : loop_(loop) {}
  FutureStateBase(const FutureStateBase&) = delete;
  FutureStateBase& operator=(const FutureStateBase&) = delete;
  virtual ~FutureStateBase();

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  EventLoop* loop() const noexcept { return loop_; }
  bool done() const noexcept { return status_ != Status::pending; }
  bool cancelled() const noexcept { return status_ == Status::cancelled; }
  Status status() const noexcept { return status_; }
  /// True if done with an exception; does not mark it retrieved.
  bool has_exception() const noexcept { return status_ == Status::finished && exception_ != nullptr; }

  /// Python's Future.cancel(msg): false if already done. Tasks override it.
  virtual bool cancel(const std::string& msg);
  /// Ends the future as cancelled, whatever kind it is (Task uses it once its coroutine ended).
  void mark_cancelled(const std::string& msg);
  void set_exception(std::exception_ptr e);
  /// The stored exception (marking it retrieved), null if the future has a result.
  /// Throws CancelledError if cancelled, InvalidStateError if pending.
  std::exception_ptr exception();
  /// Throws what result() would throw; returns if a result is there. Marks an exception retrieved.
  void check_result(const char* pending_message = "Result is not set.");
  /// Type-erased await: checks the outcome, discards the value.
  void take_for_await() { check_result(); }
  const std::string& cancel_message() const noexcept;
  void set_cancel_message(const std::string& msg);
  /// A name set for diagnostics (tasks keep theirs here), or null.
  const std::string* name() const noexcept { return extras_ && extras_->has_name ? &extras_->name : nullptr; }
  void set_name(std::string name);

  void add_callback(DoneCallback cb);
  /// Removes callbacks matching (fn, arg); returns how many.
  std::size_t remove_callback(void (*fn)(void*, FutureStateBase&), void* arg) noexcept;
  /// Removes the callback with this id; returns how many (0 or 1).
  std::size_t remove_callback_id(std::uint64_t id) noexcept;
  /// Schedules `fn(self)` with call_soon when done (Python's add_done_callback). Returns an id.
  std::uint64_t add_user_callback(std::function<void(FutureStateBase&)> fn);

  /// Name used in diagnostics ("Future", or the task's name).
  virtual std::string describe() const { return "Future"; }

 protected:
  /// Marks done and fires the callbacks.
  void finish(Status status);
  /// Reports an exception nobody retrieved; derived destructors call it with their own wording.
  void report_unretrieved(const char* what, const std::string& name, const std::string& location) noexcept;

  std::exception_ptr exception_;

 private:
  void fire_callbacks() noexcept;
  friend struct Introspect;  // diagnostics walk the callbacks to find awaiters (src/diag/introspect.hpp)

  // Rarely used parts live in one block allocated on first use, which keeps the common future
  // (and every task) small: a million sleeping tasks is a million of these.
  struct Extras {
    std::string cancel_message;
    std::string name;
    std::vector<DoneCallback> more;  // callbacks beyond the first, in registration order
    bool has_name = false;
  };
  Extras& extras();

  EventLoop* loop_;
  std::unique_ptr<Extras> extras_;
  // The common case, one internal waiter, needs no allocation.
  void (*first_fn_)(void*, FutureStateBase&) = nullptr;
  void* first_arg_ = nullptr;
  std::uint32_t refs_ = 1;
  Status status_ = Status::pending;

 protected:
  bool log_exception_ = false;  // an exception is stored and nobody asked for it yet
};

template <class T>
class FutureState : public FutureStateBase {
 public:
  using FutureStateBase::FutureStateBase;

  template <class U>
  void set_result(U&& v) {
    if (done()) throw InvalidStateError("invalid state: the future is already done");
    value_.emplace(std::forward<U>(v));
    finish(Status::finished);
  }
  const T& result() {
    check_result();
    return *value_;
  }
  /// What `co_await future` returns: a copy when T can be copied (several awaiters may read the
  /// same future), otherwise the value moved out (one consumer).
  T take_for_await() {
    check_result();
    if constexpr (std::is_copy_constructible_v<T>)
      return *value_;
    else
      return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class FutureState<void> : public FutureStateBase {
 public:
  using FutureStateBase::FutureStateBase;
  void set_result() {
    if (done()) throw InvalidStateError("invalid state: the future is already done");
    finish(Status::finished);
  }
  void result() { check_result(); }
  void take_for_await() { check_result(); }
};

}  // namespace asyncio::detail
#pragma GCC visibility pop
