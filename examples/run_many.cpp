// SPDX-License-Identifier: MIT
// run_many: runs shell commands concurrently, at most N at a time, printing each output line
// prefixed with its command as it arrives, and killing any command that runs past a timeout —
// a small `xargs -P`. The Python it ports:
//
//   async def run(cmd, slots, timeout):
//       async with slots:
//           proc = await asyncio.create_subprocess_shell(
//               cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
//           async def pump():
//               while line := await proc.stdout.readline():
//                   print(f"[{cmd}] {line.decode().rstrip()}")
//           try:
//               await asyncio.wait_for(pump(), timeout)
//           except TimeoutError:
//               proc.kill()
//               print(f"[{cmd}] killed after {timeout} s")
//           return await proc.wait()
//
//   async def main(cmds, n, timeout):
//       slots = asyncio.Semaphore(n)
//       codes = await asyncio.gather(*(run(c, slots, timeout) for c in cmds))
//       return 0 if all(c == 0 for c in codes) else 1
//
// Usage: run_many [-j N] [-t SECONDS] COMMAND...
//   run_many -j 2 -t 5 'make -C a' 'make -C b' 'sleep 60'
#include <asyncio/asyncio.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

/// Prints every line of the command's output, prefixed with the command.
asyncio::Coro<void> pump(const std::string& cmd, asyncio::StreamReader out) {
  while (true) {
    std::string line = co_await out.readline();
    if (line.empty()) break;
    if (line.back() == '\n') line.pop_back();
    std::printf("[%s] %s\n", cmd.c_str(), line.c_str());
    std::fflush(stdout);
  }
}

/// Runs one command in its turn; its returncode (negative when killed).
asyncio::Coro<int> run(std::string cmd, asyncio::Semaphore& slots, double timeout) {
  co_await slots.acquire();
  // Python's `async with slots:`, in a form that also releases when this coroutine is cancelled.
  struct Release {
    asyncio::Semaphore& s;
    ~Release() { s.release(); }
  } release{slots};
  asyncio::SubprocessOptions options;
  options.stdout = asyncio::subprocess::PIPE;
  options.stderr = asyncio::subprocess::STDOUT;
  asyncio::Process proc = co_await asyncio::create_subprocess_shell(cmd, options);
  bool timed_out = false;
  try {
    co_await asyncio::wait_for(pump(cmd, *proc.stdout), timeout);
  } catch (const asyncio::TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) {
    // Cancelling the wait left the command running, as in Python: kill it, then reap it.
    proc.kill();
    std::printf("[%s] killed after %g s\n", cmd.c_str(), timeout);
  }
  int code = co_await proc.wait();
  if (code != 0 && !timed_out) std::printf("[%s] exited with %d\n", cmd.c_str(), code);
  co_return code;
}

asyncio::Coro<int> main_coro(std::vector<std::string> cmds, int jobs, double timeout) {
  asyncio::Semaphore slots(jobs);
  std::vector<asyncio::Coro<int>> runs;
  for (const std::string& cmd : cmds) runs.push_back(run(cmd, slots, timeout));
  std::vector<int> codes = co_await asyncio::gather(std::move(runs));
  for (int code : codes)
    if (code != 0) co_return 1;
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 4;
  double timeout = 60;
  std::vector<std::string> cmds;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-j" && i + 1 < argc)
      jobs = std::atoi(argv[++i]);
    else if (arg == "-t" && i + 1 < argc)
      timeout = std::atof(argv[++i]);
    else
      cmds.push_back(arg);
  }
  if (cmds.empty() || jobs < 1) {
    std::fprintf(stderr, "usage: run_many [-j N] [-t SECONDS] COMMAND...\n");
    return 2;
  }
  try {
    return asyncio::run(main_coro(std::move(cmds), jobs, timeout));
  } catch (const asyncio::KeyboardInterrupt&) {
    return 130;  // Ctrl-C: every command was killed as the loop closed
  }
}
