// SPDX-License-Identifier: MIT
#include "os/cpus.hpp"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <thread>

namespace asyncio::detail::os {

std::vector<int> usable_cpus() {
  std::vector<int> cpus;
  // Large enough for machines with more CPUs than cpu_set_t's 1024: grow until the mask fits.
  for (int n = 1024; n <= (1 << 20) && cpus.empty(); n *= 2) {
    cpu_set_t* set = CPU_ALLOC(n);
    if (!set) break;
    std::size_t size = CPU_ALLOC_SIZE(n);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      for (int cpu = 0; cpu < n; ++cpu)
        if (CPU_ISSET_S(cpu, size, set)) cpus.push_back(cpu);
      CPU_FREE(set);
      break;
    }
    int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;  // EINVAL: the mask is too small
  }
  if (cpus.empty()) {
    unsigned n = std::thread::hardware_concurrency();
    for (unsigned cpu = 0; cpu < (n ? n : 1); ++cpu) cpus.push_back(static_cast<int>(cpu));
  }
  return cpus;
}

int pin_current_thread(int cpu) noexcept {
  if (cpu < 0) return EINVAL;
  cpu_set_t* set = CPU_ALLOC(cpu + 1);
  if (!set) return ENOMEM;
  std::size_t size = CPU_ALLOC_SIZE(cpu + 1);
  CPU_ZERO_S(size, set);
  CPU_SET_S(cpu, size, set);
  int rc = pthread_setaffinity_np(pthread_self(), size, set);
  CPU_FREE(set);
  return rc;
}

}  // namespace asyncio::detail::os
