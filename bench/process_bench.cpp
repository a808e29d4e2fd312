// SPDX-License-Identifier: MIT
// Our asyncio's side of the process benchmark (bench/run_process.sh): the two workloads written
// as a Python programmer would write them, next to peers/process_asyncio.py (asyncio, uvloop)
// and peers/process_c.c (plain C: the floor).
//
//   process_bench spawn N      N runs of /bin/true, 50 at a time: 50 tasks each loop on
//                              create_subprocess_exec("/bin/true") + wait() until N have started
//   process_bench pipe BYTES   BYTES through `cat` (stdin and stdout pipes): one task writes
//                              64 KiB chunks with write() + drain(), another reads with read(65536)
//   process_bench pipe BYTES --sigpipe-ignored
//                              the same with SIGPIPE ignored, as Python (and uvloop) run: the
//                              pipe transport then writes without keeping SIGPIPE away itself
//
// Prints `RESULT spawn procs_per_s X` / `RESULT pipe mb_per_s X` (MB = 10^6 bytes), and this
// process's CPU time, all threads (children not counted): `RESULT spawn cpu_us_per_proc X` /
// `RESULT pipe mb_per_cpu_s X`.
#include <asyncio/asyncio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.hpp"

namespace {

constexpr int kConcurrency = 50;
constexpr std::size_t kChunk = 64 * 1024;

/// This process's CPU time (user + system, all threads) in seconds.
double cpu_s() { return double(std::clock()) / CLOCKS_PER_SEC; }

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "process_bench: %s\n", what);
  std::exit(1);
}

// ---- spawn -----------------------------------------------------------------------------------

asyncio::Coro<void> spawn_worker(long& started, long n) {
  while (started < n) {
    ++started;
    asyncio::Process proc = co_await asyncio::create_subprocess_exec("/bin/true");
    if (co_await proc.wait() != 0) fail("/bin/true failed");
  }
}

asyncio::Coro<void> bench_spawn(long n) {
  long started = 0;
  std::vector<asyncio::Task<void>> workers;
  auto start = bench::Clock::now();
  double cpu_start = cpu_s();
  for (int i = 0; i < kConcurrency; ++i) workers.push_back(asyncio::create_task(spawn_worker(started, n)));
  for (auto& w : workers) co_await w;
  bench::report("spawn", "procs_per_s", double(n) / bench::seconds_since(start));
  bench::report("spawn", "cpu_us_per_proc", (cpu_s() - cpu_start) * 1e6 / double(n));
}

// ---- pipe ------------------------------------------------------------------------------------

asyncio::Coro<void> write_all(asyncio::StreamWriter stdin, long long total) {
  const std::string chunk(kChunk, 'x');
  for (long long left = total; left > 0;) {
    std::string_view piece(chunk.data(), left >= static_cast<long long>(kChunk) ? kChunk : std::size_t(left));
    stdin.write(piece);
    co_await stdin.drain();
    left -= static_cast<long long>(piece.size());
  }
  stdin.close();
  co_await stdin.wait_closed();
}

asyncio::Coro<long long> read_all(asyncio::StreamReader stdout) {
  long long received = 0;
  while (true) {
    std::string data = co_await stdout.read(kChunk);
    if (data.empty()) co_return received;
    received += static_cast<long long>(data.size());
  }
}

asyncio::Coro<void> bench_pipe(long long total) {
  auto start = bench::Clock::now();
  double cpu_start = cpu_s();
  asyncio::SubprocessOptions options;
  options.stdin = options.stdout = asyncio::subprocess::PIPE;
  asyncio::Process proc = co_await asyncio::create_subprocess_exec("cat", options);
  auto [written, received] = co_await asyncio::gather(write_all(proc.stdin, total), read_all(*proc.stdout));
  (void)written;
  if (co_await proc.wait() != 0 || received != total) fail("cat lost data or failed");
  bench::report("pipe", "mb_per_s", double(total) / 1e6 / bench::seconds_since(start));
  bench::report("pipe", "mb_per_cpu_s", double(total) / 1e6 / (cpu_s() - cpu_start));
}

}  // namespace

int main(int argc, char** argv) {
  bool ignore_sigpipe = argc == 4 && std::string_view(argv[3]) == "--sigpipe-ignored";
  if (argc != 3 && !ignore_sigpipe) {
    std::fprintf(stderr, "usage: %s spawn N | pipe BYTES [--sigpipe-ignored]\n", argv[0]);
    return 2;
  }
  if (ignore_sigpipe) std::signal(SIGPIPE, SIG_IGN);
  std::string_view workload = argv[1];
  long long count = std::atoll(argv[2]);
  if (workload == "spawn")
    asyncio::run(bench_spawn(static_cast<long>(count)));
  else if (workload == "pipe")
    asyncio::run(bench_pipe(count));
  else
    return 2;
  return 0;
}
