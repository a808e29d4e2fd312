// SPDX-License-Identifier: MIT
// Private to the library: starting a program, watching it end and signalling it, behind calls the
// layers above can use without the platform's headers.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace asyncio::detail::os {

/// What becomes of one of the child's standard descriptors (0, 1, 2).
enum : int {
  kStdioInherit = -1,   // the parent's own descriptor
  kStdioDevNull = -2,   // /dev/null, opened read-write
  kStdioAsStdout = -3,  // (stderr only) whatever the child's stdout is
};

/// Everything spawn() needs to start one program.
struct SpawnRequest {
  std::vector<std::string> argv;                 // argv[0] is the program (looked up in PATH without '/')
  std::optional<std::vector<std::string>> env;   // "NAME=value" entries; none: the parent's environment
  std::string cwd;                               // empty: the parent's
  int stdio[3] = {kStdioInherit, kStdioInherit, kStdioInherit};  // a descriptor or one of the above
  bool start_new_session = false;                // setsid() in the child
  std::optional<pid_t> process_group;            // setpgid(0, *process_group) in the child
  std::vector<int> pass_fds;                     // kept open, at the same numbers, in the child
};

/// Starts the program with posix_spawn (a vfork-like clone: no copy of the parent's memory) and
/// returns its pid. The child gets a clean slate: every descriptor but 0, 1, 2 and pass_fds is
/// closed, its signal mask is empty and every signal has its default disposition.
///
/// A program that cannot be started (not found, not executable, a bad cwd) throws
/// std::system_error in the parent with the errno of the failure (ENOENT, EACCES, ...), never a
/// child that exits with 127.
pid_t spawn(const SpawnRequest& request);

/// The program spawn() would run for `name`: `name` itself if it holds a '/', else the first
/// executable file called `name` in the directories of `path` (PATH). std::system_error (ENOENT,
/// or EACCES when only unexecutable candidates were found) if there is none.
std::string find_program(const std::string& name, const std::string& path);

/// A pidfd for `pid` (close-on-exec), or -1 with errno (ENOSYS on kernels before 5.3, EMFILE).
int pidfd_open(pid_t pid) noexcept;

/// Sends `sig` through a pidfd: never reaches another process, even once the pid is reused.
/// 0, or -1 with errno (ESRCH once the child has been reaped).
int pidfd_send_signal(int pidfd, int sig) noexcept;

/// SIGKILL and SIGTERM, for the layers above that may not include <signal.h>.
int sigkill() noexcept;
int sigterm() noexcept;

/// kill(2): 0, or -1 with errno.
int send_signal(pid_t pid, int sig) noexcept;

/// Python's returncode for a wait status: the exit code, or minus the signal that killed it.
int returncode_of(int status) noexcept;

/// Reaps `pid` if it has ended: its returncode; nothing if it still runs. A child someone else
/// reaped (an application's SIGCHLD handler, SIGCHLD ignored) gives 255, as asyncio does.
std::optional<int> try_reap(pid_t pid) noexcept;

/// Reaps `pid`, waiting for it to end: its returncode (255 if someone else reaped it).
int reap(pid_t pid) noexcept;

/// Waits until `pid` has ended, without reaping it (so its pid cannot be reused before the
/// loop's thread reaps it). For the thread that watches a child where pidfd is missing.
void wait_ended(pid_t pid) noexcept;

/// Whether this kernel has pidfd_open (asked once).
bool have_pidfd() noexcept;

}  // namespace asyncio::detail::os
