// SPDX-License-Identifier: MIT
// Test-only fault injection at the system-call boundary, as an interposed shared object
// (LD_PRELOAD): the system calls the library makes fail or come back short on a seeded schedule,
// so that its error paths run on purpose rather than once a year in production.
//
//   ASYNCIO_FAULTS=SEED            switch it on (unset: every call passes straight through)
//   ASYNCIO_FAULTS_MODE=transparent  (default) only what a correct program must absorb without
//                                  a visible difference: EINTR, EAGAIN on non-blocking sockets,
//                                  1-byte and other short reads and writes, ECONNABORTED from
//                                  accept, close() that closes yet says EINTR. Tests must pass.
//   ASYNCIO_FAULTS_MODE=hard       also real failures: ENOMEM, ENOBUFS, ECONNRESET, EPIPE, EMFILE,
//                                  ECONNREFUSED, EAI_AGAIN, epoll_ctl and eventfd failing. Tests
//                                  may fail, but only with clean exceptions: no crash, no
//                                  sanitizer report, no socket left open at exit.
//   ASYNCIO_FAULTS_RATE=N          one eligible call in N gets a fault (default 4)
//   ASYNCIO_FAULTS_REPORT=PATH     append a summary line at exit (also printed on stderr)
//   ASYNCIO_FAULTS_PROGRAM=NAME    only in the program of that name (for wrappers like timeout(1))
//   ASYNCIO_FAULTS_SKIP=a,b        leave these calls alone (to narrow a failure down)
//   ASYNCIO_FAULTS_TRACE=1         print each fault as it is injected (to find what a failure met)
//
// Only non-blocking sockets are touched, which is every descriptor the library does I/O on and
// none of the blocking files, pipes and sockets the tests use for themselves. ASYNCIO_FAULTS is
// taken out of the environment at start-up, so child processes (Python peers, openssl) run
// unharmed.
#include <dlfcn.h>
#include <errno.h>  // program_invocation_short_name
#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

enum Fault { kEintr, kEagain, kShort, kAborted, kCloseEintr, kHard, kFaultKinds };
const char* const kFaultNames[kFaultKinds] = {"EINTR", "EAGAIN", "short", "ECONNABORTED", "close-EINTR", "hard"};

struct Config {
  bool on = false;
  bool hard = false;
  std::uint64_t seed = 0;
  std::uint32_t rate = 4;
  const char* report = nullptr;
  bool trace = false;
};

Config g_config;
thread_local const char* t_call = "";  // the interposed call in progress
std::atomic<std::uint64_t> g_calls{0};
std::atomic<std::uint64_t> g_injected[kFaultKinds] = {};
std::atomic<std::uint64_t> g_threads{0};

// ---- the schedule: a per-thread generator from the seed ----------------------------------------

std::uint64_t next_random() {
  thread_local std::uint64_t state = 0;
  if (state == 0) state = (g_config.seed + 1) * 0x9E3779B97F4A7C15ull ^ (g_threads.fetch_add(1) + 1) * 0xBF58476D1CE4E5B9ull;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

/// True when ASYNCIO_FAULTS_SKIP names the call in progress.
bool skipped() {
  static const char* skip = std::getenv("ASYNCIO_FAULTS_SKIP");
  if (!skip) return false;
  std::size_t n = std::strlen(t_call);
  for (const char* p = std::strstr(skip, t_call); p; p = std::strstr(p + 1, t_call))
    if ((p == skip || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
  return false;
}

/// True for one eligible call in `rate`.
bool strike() {
  if (skipped()) return false;
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return next_random() % g_config.rate == 0;
}

std::uint32_t pick(std::uint32_t n) { return static_cast<std::uint32_t>(next_random() % n); }

// ---- the real calls --------------------------------------------------------------------------------

template <class F>
F real(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  if (!p) {
    std::fprintf(stderr, "fault_inject: no %s\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(p);
}

#define REAL(name)                                                 \
  static auto real_##name = real<decltype(&::name)>(#name); \
  t_call = #name

/// Sockets the library drives: non-blocking sockets. `type` receives SOCK_STREAM or SOCK_DGRAM.
bool eligible(int fd, int* type = nullptr) {
  if (!g_config.on || fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || !(flags & O_NONBLOCK)) return false;
  if (type) {
    socklen_t len = sizeof *type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) != 0) return false;
  }
  return true;
}

int fail(Fault kind, int err) {
  g_injected[kind].fetch_add(1, std::memory_order_relaxed);
  if (g_config.trace) std::fprintf(stderr, "fault: %s %s (%s)\n", t_call, kFaultNames[kind], std::strerror(err));
  errno = err;
  return -1;
}

/// The fault for a read or write: EINTR, EAGAIN, a short count (streams only), or in hard mode
/// one of `hard_errors`. Returns -1 with errno set, or 0 to let the call go on, with `*len`
/// possibly reduced.
template <std::size_t N>
int fault_for_io(int type, std::size_t* len, const int (&hard_errors)[N]) {
  std::uint32_t choices = g_config.hard ? 4 : 3;
  switch (pick(choices)) {
    case 0:
      return fail(kEintr, EINTR);
    case 1:
      return fail(kEagain, EAGAIN);
    case 2:
      if (type == SOCK_STREAM && len && *len > 1) {
        g_injected[kShort].fetch_add(1, std::memory_order_relaxed);
        *len = pick(4) == 0 ? 1 + pick(static_cast<std::uint32_t>(*len - 1)) : 1;
        if (g_config.trace) std::fprintf(stderr, "fault: %s short (%zu bytes)\n", t_call, *len);
        return 0;
      }
      return fail(kEintr, EINTR);
    default:
      return fail(kHard, hard_errors[pick(N)]);
  }
}

const int kReadErrors[] = {ECONNRESET, ENOMEM, ENOBUFS};
const int kWriteErrors[] = {ECONNRESET, EPIPE, ENOMEM, ENOBUFS};

// ---- set-up and the summary ------------------------------------------------------------------------

__attribute__((constructor)) void start() {
  const char* seed = std::getenv("ASYNCIO_FAULTS");
  if (!seed || !*seed) return;
  if (const char* only = std::getenv("ASYNCIO_FAULTS_PROGRAM")) {
    // Only in that program (so a wrapper such as timeout(1) can start it).
    if (std::strcmp(only, program_invocation_short_name) != 0) return;
  } else {
    // Only in this process: its children (Python peers, openssl) inherit the preload inert.
    static std::string kept = seed;
    seed = kept.c_str();
    ::unsetenv("ASYNCIO_FAULTS");
  }
  g_config.seed = std::strtoull(seed, nullptr, 10);
  const char* mode = std::getenv("ASYNCIO_FAULTS_MODE");
  g_config.hard = mode && std::strcmp(mode, "hard") == 0;
  if (const char* rate = std::getenv("ASYNCIO_FAULTS_RATE"); rate && std::atoi(rate) > 0)
    g_config.rate = static_cast<std::uint32_t>(std::atoi(rate));
  g_config.report = std::getenv("ASYNCIO_FAULTS_REPORT");
  g_config.trace = std::getenv("ASYNCIO_FAULTS_TRACE") != nullptr;
  g_config.on = true;
}

/// Sockets still open at exit: the library must give every one back.
int open_sockets() {
  int n = 0;
  for (int fd = 3; fd < 65536; ++fd) {
    struct stat st;
    if (::fcntl(fd, F_GETFD) == -1) continue;
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) ++n;
  }
  return n;
}

__attribute__((destructor)) void finish() {
  if (!g_config.on) return;
  unsigned long long total = 0;
  for (const auto& c : g_injected) total += c.load();
  char line[512];
  int n = std::snprintf(line, sizeof line, "asyncio-faults: seed %llu %s: %llu faults in %llu calls (",
                        static_cast<unsigned long long>(g_config.seed), g_config.hard ? "hard" : "transparent",
                        total, static_cast<unsigned long long>(g_calls.load()));
  for (int k = 0; k < kFaultKinds; ++k)
    n += std::snprintf(line + n, sizeof line - n, "%s%s %llu", k ? ", " : "", kFaultNames[k],
                       static_cast<unsigned long long>(g_injected[k].load()));
  std::snprintf(line + n, sizeof line - n, "); sockets open at exit: %d\n", open_sockets());
  std::fputs(line, stderr);
  if (g_config.report) {
    if (FILE* f = std::fopen(g_config.report, "a")) {
      std::fputs(line, f);
      std::fclose(f);
    }
  }
}

}  // namespace

// ---- the interposed calls ------------------------------------------------------------------------

extern "C" {

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  REAL(recv);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kReadErrors) < 0) return -1;
  return real_recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* addr, socklen_t* alen) {
  REAL(recvfrom);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kReadErrors) < 0) return -1;
  return real_recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t read(int fd, void* buf, size_t len) {
  REAL(read);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kReadErrors) < 0) return -1;
  return real_read(fd, buf, len);
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  REAL(recvmsg);
  int type = 0;
  // (No short reads here: a datagram's ancillary data and the iovec split stay whole.)
  if (eligible(fd, &type) && strike() && fault_for_io(SOCK_DGRAM, nullptr, kReadErrors) < 0) return -1;
  return real_recvmsg(fd, msg, flags);
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  REAL(send);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kWriteErrors) < 0) return -1;
  return real_send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* addr, socklen_t alen) {
  REAL(sendto);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kWriteErrors) < 0) return -1;
  return real_sendto(fd, buf, len, flags, addr, alen);
}

ssize_t write(int fd, const void* buf, size_t len) {
  REAL(write);
  int type = 0;
  if (eligible(fd, &type) && strike() && fault_for_io(type, &len, kWriteErrors) < 0) return -1;
  return real_write(fd, buf, len);
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  REAL(sendmsg);
  int type = 0;
  if (!eligible(fd, &type) || !strike()) return real_sendmsg(fd, msg, flags);
  std::size_t total = 0;
  for (std::size_t i = 0; i < msg->msg_iovlen; ++i) total += msg->msg_iov[i].iov_len;
  std::size_t len = total;
  if (fault_for_io(type, &len, kWriteErrors) < 0) return -1;
  if (len == total || msg->msg_iovlen == 0) return real_sendmsg(fd, msg, flags);
  // Short: the first `len` bytes of the first buffer (len < total, so it is within reach).
  struct iovec first = msg->msg_iov[0];
  if (first.iov_len > len) first.iov_len = len;
  struct msghdr shorter = *msg;
  shorter.msg_iov = &first;
  shorter.msg_iovlen = 1;
  return real_sendmsg(fd, &shorter, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  REAL(sendfile);
  int type = 0;
  if (eligible(out_fd, &type) && strike() && fault_for_io(type, &count, kWriteErrors) < 0) return -1;
  return real_sendfile(out_fd, in_fd, offset, count);
}

int accept4(int fd, struct sockaddr* addr, socklen_t* alen, int flags) {
  REAL(accept4);
  if (eligible(fd) && strike()) {
    switch (pick(g_config.hard ? 4 : 3)) {
      case 0:
        return fail(kEintr, EINTR);
      case 1:
        return fail(kEagain, EAGAIN);
      case 2:
        return fail(kAborted, ECONNABORTED);  // the connection stays queued for the next accept
      default: {
        static const int errors[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM};
        return fail(kHard, errors[pick(4)]);
      }
    }
  }
  return real_accept4(fd, addr, alen, flags);
}

int connect(int fd, const struct sockaddr* addr, socklen_t alen) {
  REAL(connect);
  // A non-blocking connect interrupted or refused: only real failures, in hard mode.
  if (g_config.hard && eligible(fd) && strike()) {
    static const int errors[] = {ECONNREFUSED, ENETUNREACH, ENOBUFS};
    return fail(kHard, errors[pick(3)]);
  }
  return real_connect(fd, addr, alen);
}

int epoll_wait(int epfd, struct epoll_event* events, int max, int timeout) {
  REAL(epoll_wait);
  if (g_config.on && strike()) return fail(kEintr, EINTR);
  return real_epoll_wait(epfd, events, max, timeout);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  REAL(epoll_ctl);
  if (g_config.on && g_config.hard && op != EPOLL_CTL_DEL && strike()) return fail(kHard, ENOMEM);
  return real_epoll_ctl(epfd, op, fd, event);
}

int eventfd(unsigned int initval, int flags) {
  REAL(eventfd);
  if (g_config.on && g_config.hard && strike()) return fail(kHard, EMFILE);
  return real_eventfd(initval, flags);
}

int close(int fd) {
  REAL(close);
  // Linux's close() can say EINTR after it closed the descriptor; retrying would close another.
  if (eligible(fd) && strike()) {
    real_close(fd);
    return fail(kCloseEintr, EINTR);
  }
  return real_close(fd);
}

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  REAL(getaddrinfo);
  if (g_config.on && g_config.hard && strike()) {
    g_injected[kHard].fetch_add(1, std::memory_order_relaxed);
    return pick(2) ? EAI_AGAIN : EAI_MEMORY;
  }
  return real_getaddrinfo(node, service, hints, res);
}

}  // extern "C"
