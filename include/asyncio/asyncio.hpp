// SPDX-License-Identifier: MIT
// The whole library: `#include <asyncio/asyncio.hpp>`.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include "asyncio/coro.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/future.hpp"
#include "asyncio/log.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/run.hpp"
#include "asyncio/sleep.hpp"
#include "asyncio/task.hpp"
#include "asyncio/gather.hpp"
#include "asyncio/outcome.hpp"
#include "asyncio/shield.hpp"
#include "asyncio/task_group.hpp"
#include "asyncio/timeout.hpp"
#include "asyncio/wait.hpp"
#include "asyncio/channel.hpp"
#include "asyncio/locks.hpp"
#include "asyncio/per_core.hpp"
#include "asyncio/queues.hpp"
#include "asyncio/threads.hpp"
#include "asyncio/socket.hpp"
#include "asyncio/dns.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/version.hpp"
#if ASYNCIO_HAS_TLS
#include "asyncio/ssl.hpp"
#endif
#include "asyncio/transports.hpp"
#include "asyncio/pipes.hpp"
#include "asyncio/streams.hpp"
#include "asyncio/subprocess.hpp"
#include "asyncio/inspect.hpp"
#include "asyncio/trace.hpp"
#include "asyncio/watchdog.hpp"
#pragma GCC visibility pop
