// SPDX-License-Identifier: MIT
// Private to the library: which CPUs the process may run on, and pinning a thread to one, behind
// calls the layers above can use without the platform's headers (run_per_core).
#pragma once

#include <vector>

namespace asyncio::detail::os {

/// The CPUs the calling thread may run on (its affinity mask, sched_getaffinity(2): what
/// taskset, cgroups' cpusets and container limits leave), in increasing order. Never empty: if
/// the mask cannot be read, 0 .. hardware_concurrency-1.
std::vector<int> usable_cpus();

/// Pins the calling thread to `cpu` (pthread_setaffinity_np); 0, or the error number.
int pin_current_thread(int cpu) noexcept;

}  // namespace asyncio::detail::os
