// SPDX-License-Identifier: MIT
// The cold half of detail/duration.hpp: the error for a NaN delay, out of line so that the
// conversions inlined into hot paths (sleep, call_later) stay small.
#include "asyncio/detail/duration.hpp"

#include <string>

#include "asyncio/errors.hpp"

namespace asyncio::detail {

void throw_nan_duration(const char* what) {
  throw ValueError(std::string("Invalid ") + what + ": NaN (not a number)");
}

}  // namespace asyncio::detail
