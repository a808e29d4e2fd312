// SPDX-License-Identifier: MIT
// Outcome<T>: a value or the exception that replaced it. What gather(return_exceptions, ...)
// returns for each child, where Python would return the exception object in the result list.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <exception>
#include <utility>
#include <variant>

#include "asyncio/errors.hpp"

namespace asyncio {

/// Either a T or an exception.
///   for (auto& o : results) if (o.has_value()) use(o.value()); else log(o.exception());
template <class T>
class Outcome {
 public:
  /// A value.
  Outcome(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  /// An exception.
  Outcome(std::exception_ptr e) : v_(std::in_place_index<1>, std::move(e)) {}

  /// True if it holds a value.
  bool has_value() const noexcept { return v_.index() == 0; }
  /// True if it holds an exception.
  bool has_exception() const noexcept { return v_.index() == 1; }
  /// The value, or rethrows the exception.
  T& value() & {
    if (v_.index() == 1) std::rethrow_exception(std::get<1>(v_));
    return std::get<0>(v_);
  }
  /// The value; rethrows the exception if it holds one.
  const T& value() const& {
    if (v_.index() == 1) std::rethrow_exception(std::get<1>(v_));
    return std::get<0>(v_);
  }
  /// The exception, or null.
  std::exception_ptr exception() const noexcept { return v_.index() == 1 ? std::get<1>(v_) : nullptr; }
  /// True if the exception is a CancelledError.
  bool cancelled() const noexcept { return v_.index() == 1 && is_cancelled_error(std::get<1>(v_)); }

 private:
  std::variant<T, std::exception_ptr> v_;
};

}  // namespace asyncio
#pragma GCC visibility pop
