// SPDX-License-Identifier: MIT
#include "os/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <system_error>

extern char** environ;

namespace asyncio::detail::os {

namespace {

[[noreturn]] void fail(int err, const std::string& what) { throw std::system_error(err, std::system_category(), what); }

/// posix_spawn's two argument objects, destroyed however spawn() leaves.
struct SpawnArgs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnArgs() {
    if (int err = posix_spawn_file_actions_init(&actions)) fail(err, "posix_spawn_file_actions_init");
    if (int err = posix_spawnattr_init(&attr)) {
      posix_spawn_file_actions_destroy(&actions);
      fail(err, "posix_spawnattr_init");
    }
  }
  ~SpawnArgs() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  SpawnArgs(const SpawnArgs&) = delete;
  SpawnArgs& operator=(const SpawnArgs&) = delete;
};

/// Descriptors below 3 that would be overwritten by the dup2s into 0..2 before they are read are
/// copied above 2 first (closed again when spawn() returns).
class LowFdCopies {
 public:
  LowFdCopies() = default;
  LowFdCopies(const LowFdCopies&) = delete;
  LowFdCopies& operator=(const LowFdCopies&) = delete;
  ~LowFdCopies() {
    for (int fd : copies_) ::close(fd);
  }
  int above_stdio(int fd) {
    if (fd >= 3) return fd;
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) fail(errno, "fcntl(F_DUPFD_CLOEXEC)");
    copies_.push_back(copy);
    return copy;
  }

 private:
  std::vector<int> copies_;
};

void add_stdio(SpawnArgs& a, const SpawnRequest& r, LowFdCopies& copies) {
  int source[3];
  for (int i = 0; i < 3; ++i) source[i] = r.stdio[i] >= 0 ? copies.above_stdio(r.stdio[i]) : r.stdio[i];
  for (int i = 0; i < 3; ++i) {
    int err = 0;
    if (source[i] >= 0)
      err = posix_spawn_file_actions_adddup2(&a.actions, source[i], i);
    else if (source[i] == kStdioDevNull)
      err = posix_spawn_file_actions_addopen(&a.actions, i, "/dev/null", O_RDWR, 0);
    else if (source[i] == kStdioAsStdout && i == 2)
      err = posix_spawn_file_actions_adddup2(&a.actions, 1, 2);
    if (err) fail(err, "posix_spawn_file_actions");
  }
}

/// Closes every descriptor above 2 but pass_fds in the child. Ours are close-on-exec already;
/// this is for the application's, which asyncio's (close_fds=True) would not hand on either.
void add_close_fds(SpawnArgs& a, std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  int next = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    // Closing a descriptor that is not open is not an error for posix_spawn's close action.
    for (; next < fd; ++next)
      if (int err = posix_spawn_file_actions_addclose(&a.actions, next)) fail(err, "posix_spawn_file_actions_addclose");
    // dup2 onto itself clears close-on-exec (glibc 2.29+), so a close-on-exec fd passes too.
    if (int err = posix_spawn_file_actions_adddup2(&a.actions, fd, fd)) fail(err, "posix_spawn_file_actions_adddup2");
    next = fd + 1;
  }
  if (int err = posix_spawn_file_actions_addclosefrom_np(&a.actions, next)) fail(err, "posix_spawn_file_actions_addclosefrom_np");
}

/// The child's signals: nothing blocked (a loop may block some for its own use) and every
/// disposition back to the default (an ignored SIGPIPE or SIGINT is not inherited).
void add_signal_reset(SpawnArgs& a, const SpawnRequest& r) {
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (r.start_new_session) flags |= POSIX_SPAWN_SETSID;
  if (r.process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    if (int err = posix_spawnattr_setpgroup(&a.attr, *r.process_group)) fail(err, "posix_spawnattr_setpgroup");
  }
  if (int err = posix_spawnattr_setsigmask(&a.attr, &none)) fail(err, "posix_spawnattr_setsigmask");
  if (int err = posix_spawnattr_setsigdefault(&a.attr, &all)) fail(err, "posix_spawnattr_setsigdefault");
  if (int err = posix_spawnattr_setflags(&a.attr, flags)) fail(err, "posix_spawnattr_setflags");
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

/// The PATH the program is looked up in: the child's environment's, as Python does.
std::string search_path(const SpawnRequest& r) {
  if (r.env) {
    for (const std::string& e : *r.env)
      if (e.rfind("PATH=", 0) == 0) return e.substr(5);
    return "/bin:/usr/bin";
  }
  const char* p = std::getenv("PATH");
  return p ? p : "/bin:/usr/bin";
}

}  // namespace

std::string find_program(const std::string& name, const std::string& path) {
  if (name.empty()) fail(ENOENT, "empty program name");
  if (name.find('/') != std::string::npos) return name;
  int err = ENOENT;
  std::string_view rest = path;
  while (true) {
    std::size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  fail(err, name);
}

pid_t spawn(const SpawnRequest& r) {
  if (r.argv.empty()) fail(EINVAL, "spawn: empty argv");
  std::string program = find_program(r.argv[0], search_path(r));
  SpawnArgs a;
  LowFdCopies copies;
  add_stdio(a, r, copies);
  add_close_fds(a, r.pass_fds);
  // After the descriptors: a relative program or /dev/null is resolved against the parent's cwd,
  // as the program was found there.
  if (!r.cwd.empty())
    if (int err = posix_spawn_file_actions_addchdir_np(&a.actions, r.cwd.c_str())) fail(err, "posix_spawn_file_actions_addchdir_np");
  add_signal_reset(a, r);
  if (program.front() != '/' && !r.cwd.empty()) {
    char* here = ::getcwd(nullptr, 0);
    if (!here) fail(errno, "getcwd");
    program = std::string(here) + "/" + program;
    std::free(here);
  }
  std::vector<char*> argv = c_strings(r.argv);
  std::vector<char*> envp;
  if (r.env) envp = c_strings(*r.env);
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, program.c_str(), &a.actions, &a.attr, argv.data(), r.env ? envp.data() : environ);
  if (err) fail(err, r.argv[0]);
  return pid;
}

int pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

int pidfd_send_signal(int pidfd, int sig) noexcept {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
#else
  (void)pidfd;
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

int sigkill() noexcept { return SIGKILL; }
int sigterm() noexcept { return SIGTERM; }

int send_signal(pid_t pid, int sig) noexcept { return ::kill(pid, sig); }

int returncode_of(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return status;
}

std::optional<int> try_reap(pid_t pid) noexcept {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return 255;  // ECHILD: reaped by someone else
  return returncode_of(status);
}

int reap(pid_t pid) noexcept {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? 255 : returncode_of(status);
}

void wait_ended(pid_t pid) noexcept {
  siginfo_t info;
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
}

bool have_pidfd() noexcept {
  static const bool have = [] {
    int fd = pidfd_open(::getpid());
    if (fd < 0) return errno != ENOSYS && errno != EPERM;
    ::close(fd);
    return true;
  }();
  return have;
}

}  // namespace asyncio::detail::os
