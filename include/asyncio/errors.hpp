// SPDX-License-Identifier: MIT
// Exceptions with asyncio's names.
//
// Python splits its exceptions into BaseException (CancelledError, KeyboardInterrupt) and Exception
// (everything an `except Exception:` may swallow). We keep that split: CancelledError is *not* a
// std::exception, so `catch (const std::exception&)` — the C++ spelling of `except Exception` —
// never swallows a cancellation by accident. Everything else derives from asyncio::Error, itself a
// std::runtime_error. OS errors are std::system_error, as the standard library throws them.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace asyncio {

/// Raised at the await where a cancelled task is suspended (Python's asyncio.CancelledError).
/// Catch it to clean up, then rethrow: `catch (asyncio::CancelledError&) { cleanup(); throw; }`.
class CancelledError {
 public:
  /// A cancellation with an optional message (Python: `CancelledError(msg)`).
  explicit CancelledError(std::string message = {}) : message_(std::move(message)) {}
  virtual ~CancelledError() = default;
  /// The message passed to `cancel(msg)`, or empty.
  const std::string& message() const noexcept { return message_; }
  /// The message, or "CancelledError" when there is none.
  const char* what() const noexcept { return message_.empty() ? "CancelledError" : message_.c_str(); }

 private:
  std::string message_;
};

/// What asyncio::run and Runner::run raise after a Ctrl-C (SIGINT) cancelled the main task and
/// the task let the cancellation end it (Python's KeyboardInterrupt). Like CancelledError it is not
/// a std::exception, so `catch (const std::exception&)` does not swallow it; catch it in main()
/// to exit quietly:
///
///   int main() {
///     try { asyncio::run(serve()); } catch (const asyncio::KeyboardInterrupt&) { return 130; }
///   }
class KeyboardInterrupt {
 public:
  virtual ~KeyboardInterrupt() = default;
  /// "KeyboardInterrupt".
  const char* what() const noexcept { return "KeyboardInterrupt"; }
};

/// Base of every asyncio error that an ordinary `catch (const std::exception&)` should see.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A Future or Task used in a state that does not allow the call (result of a pending future, ...).
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// A deadline passed (`wait_for`, `timeout`, `as_completed`).
class TimeoutError : public Error {
 public:
  TimeoutError() : Error("TimeoutError") {}
  using Error::Error;
};

/// Misuse of the loop: running a running loop, no running loop, a closed loop, ...
class RuntimeError : public Error {
 public:
  using Error::Error;
};

/// A bad argument value (Python's ValueError).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// sock_sendfile(..., fallback = false) on a file sendfile(2) cannot send from (Python's
/// asyncio.SendfileNotAvailableError, a RuntimeError).
class SendfileNotAvailableError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

struct ExceptionGroupSplit;

/// Several failures reported together, as TaskGroup does (Python's ExceptionGroup).
/// `exceptions()` keeps them in the order they happened.
///
/// Python's `except*` ports with split<E>(): handle the part that matches, rethrow the rest.
///
/// @code
///   try {
///     co_await asyncio::task_group(body);
///   } catch (const asyncio::ExceptionGroup& eg) {      // try: ... except* TimeoutError: ...
///     auto [timeouts, rest] = eg.split<asyncio::TimeoutError>();
///     if (timeouts) log_timeouts(*timeouts);
///     if (rest) throw *rest;                           // what no except* clause took
///   }
/// @endcode
class ExceptionGroup : public Error {
 public:
  /// Groups `exceptions` (at least one) under `message`.
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  /// The grouped exceptions, in the order they were raised.
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  /// The message without the sub-exception count, as Python's `eg.message`.
  const std::string& message() const noexcept { return message_; }

  /// A predicate on one exception (the leaves, and nested groups before their leaves).
  using Condition = bool (*)(const std::exception_ptr&);
  /// The exceptions of type E (nested groups filtered the same way, empty ones dropped), in a
  /// group with the same message; nullopt if none (Python's `eg.subgroup(E)`). A group that is
  /// itself an E matches whole, nested ones too: an ExceptionGroup is an asyncio::Error, a
  /// std::runtime_error and a std::exception.
  template <class E>
  std::optional<ExceptionGroup> subgroup() const;
  /// Python's `match, rest = eg.split(E)`: subgroup<E>() and what remains, both with the same
  /// message and nesting, each nullopt if empty.
  template <class E>
  ExceptionGroupSplit split() const;
  /// split() with any condition; `whole` says the group itself matches.
  ExceptionGroupSplit split_if(Condition condition, bool whole = false) const;

 private:
  template <class E>
  static bool is_a(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
};

/// What ExceptionGroup::split returns: the matching part and the rest, each a group with the
/// original message, or nullopt when empty (Python's `match, rest = eg.split(E)`).
struct ExceptionGroupSplit {
  std::optional<ExceptionGroup> match;  ///< the exceptions of the type asked for, if any
  std::optional<ExceptionGroup> rest;   ///< the others, if any
};

template <class E>
std::optional<ExceptionGroup> ExceptionGroup::subgroup() const {
  return split_if(&is_a<E>, std::is_base_of_v<E, ExceptionGroup>).match;
}
template <class E>
ExceptionGroupSplit ExceptionGroup::split() const {
  return split_if(&is_a<E>, std::is_base_of_v<E, ExceptionGroup>);
}

/// A one-line description of any exception, CancelledError and non-std types included.
std::string describe_exception(const std::exception_ptr& e);

/// True if `e` holds a CancelledError.
bool is_cancelled_error(const std::exception_ptr& e) noexcept;
/// True if `e` holds a CancelledError; its message is then stored in `message`.
bool is_cancelled_error(const std::exception_ptr& e, std::string& message);

}  // namespace asyncio

// ---- streams (asyncio/streams.hpp) ----------------------------------------------------------------
#include <cstddef>
#include <optional>

namespace asyncio {

/// The stream ended before a read was satisfied (Python's asyncio.IncompleteReadError).
/// `partial` holds the bytes read before the end; `expected` the count asked for, or nullopt
/// when it is unknown (readuntil).
class IncompleteReadError : public Error {
 public:
  /// `partial_bytes` read before EOF; `expected_bytes` wanted (nullopt: "until a separator").
  IncompleteReadError(std::string partial_bytes, std::optional<std::size_t> expected_bytes)
      : Error(std::to_string(partial_bytes.size()) + " bytes read on a total of " +
              (expected_bytes ? std::to_string(*expected_bytes) : std::string("undefined")) +
              " expected bytes"),
        partial(std::move(partial_bytes)),
        expected(expected_bytes) {}
  std::string partial;  ///< The bytes read before EOF.
  std::optional<std::size_t> expected;  ///< How many were wanted; nullopt when reading up to a separator.
};

/// A separator was not found within the StreamReader's limit (Python's asyncio.LimitOverrunError).
/// `consumed` is how many bytes should be consumed to skip past the data looked at. It is a
/// ValueError too, since readline() reports the same condition as ValueError in Python.
class LimitOverrunError : public ValueError {
 public:
  /// The separator was not found within the limit after `consumed_bytes`.
  LimitOverrunError(const std::string& message, std::size_t consumed_bytes)
      : ValueError(message), consumed(consumed_bytes) {}
  std::size_t consumed;  ///< How many bytes to consume to get past the data that overran the limit.
};

}  // namespace asyncio
#pragma GCC visibility pop
