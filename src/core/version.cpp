// SPDX-License-Identifier: MIT
// asyncio::version(): the version compiled into the library itself, so that a program linked
// against a shared libasyncio can tell it from the headers it was compiled with.
#include "asyncio/version.hpp"

namespace asyncio {

const char* version() noexcept { return ASYNCIO_VERSION_STRING; }

}  // namespace asyncio
