// The whole library: `#include <asyncio/asyncio.hpp>`.
#pragma once

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
