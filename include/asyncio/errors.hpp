// SPDX-License-Identifier: MIT
// Exceptions with asyncio's names.
//
// Python splits its exceptions into BaseException (CancelledError, KeyboardInterrupt) and Exception
// (everything an `except Exception:` may swallow). We keep that split: CancelledError is *not* a
// std::exception, so `catch (const std::exception&)` — the C++ spelling of `except Exception` —
// never swallows a cancellation by accident. Everything else derives from asyncio::Error, itself a
// std::runtime_error. OS errors are std::system_error, as the standard library throws them.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace asyncio {

/// Raised at the await where a cancelled task is suspended (Python's asyncio.CancelledError).
/// Catch it to clean up, then rethrow: `catch (asyncio::CancelledError&) { cleanup(); throw; }`.
class CancelledError {
 public:
  explicit CancelledError(std::string message = {}) : message_(std::move(message)) {}
  virtual ~CancelledError() = default;
  /// The message passed to `cancel(msg)`, or empty.
  const std::string& message() const noexcept { return message_; }
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

/// Several failures reported together, as TaskGroup does (Python's ExceptionGroup).
/// `exceptions()` keeps them in the order they happened.
class ExceptionGroup : public Error {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  /// The message without the sub-exception count, as Python's `eg.message`.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
};

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
  IncompleteReadError(std::string partial_bytes, std::optional<std::size_t> expected_bytes)
      : Error(std::to_string(partial_bytes.size()) + " bytes read on a total of " +
              (expected_bytes ? std::to_string(*expected_bytes) : std::string("undefined")) +
              " expected bytes"),
        partial(std::move(partial_bytes)),
        expected(expected_bytes) {}
  std::string partial;
  std::optional<std::size_t> expected;
};

/// A separator was not found within the StreamReader's limit (Python's asyncio.LimitOverrunError).
/// `consumed` is how many bytes should be consumed to skip past the data looked at. It is a
/// ValueError too, since readline() reports the same condition as ValueError in Python.
class LimitOverrunError : public ValueError {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed_bytes)
      : ValueError(message), consumed(consumed_bytes) {}
  std::size_t consumed;
};

}  // namespace asyncio
