// SPDX-License-Identifier: MIT
// The smallest real program against an installed asyncio: a task, a sleep, a result, and the
// version checks a program can make. Built by tests/package/run_*.sh with find_package, with
// pkg-config, against the unpacked .deb and with FetchContent; it includes only what it uses, to
// keep those builds short.
#include <asyncio/run.hpp>
#include <asyncio/sleep.hpp>
#include <asyncio/version.hpp>

#include <cstdio>
#include <cstring>

static_assert(ASYNCIO_VERSION_MAJOR >= 0 && ASYNCIO_VERSION_MINOR >= 0 && ASYNCIO_VERSION_PATCH >= 0);
#ifdef ASYNCIO_EXPECT_TLS  // what the CMake package says (asyncio_HAS_TLS)
static_assert(ASYNCIO_EXPECT_TLS == ASYNCIO_HAS_TLS, "asyncio-config.cmake and version.hpp disagree on TLS");
#endif

asyncio::Coro<int> answer() {
  co_await asyncio::sleep(0.001);
  co_return 42;
}

int main() {
  // The library linked in must be the one the headers came with.
  if (std::strcmp(asyncio::version(), ASYNCIO_VERSION_STRING) != 0) {
    std::printf("consumer: headers %s, library %s\n", ASYNCIO_VERSION_STRING, asyncio::version());
    return 1;
  }
  int v = asyncio::run(answer());
  std::printf("consumer: %d (asyncio %s, tls %d)\n", v, asyncio::version(), ASYNCIO_HAS_TLS);
}
