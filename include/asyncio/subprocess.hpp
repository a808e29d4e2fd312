// SPDX-License-Identifier: MIT
// Subprocesses: Python's asyncio.create_subprocess_exec / create_subprocess_shell and Process, and
// beneath them loop.subprocess_exec / subprocess_shell with SubprocessProtocol and
// SubprocessTransport.
//
//   asyncio::SubprocessOptions options;
//   options.stdout = asyncio::subprocess::PIPE;
//   asyncio::Process proc = co_await asyncio::create_subprocess_exec("ls", "-l", "/", options);
//   while (true) {
//     std::string line = co_await proc.stdout->readline();
//     if (line.empty()) break;
//     std::printf("%s", line.c_str());
//   }
//   int code = co_await proc.wait();          // 0, or -N when killed by signal N
//
// A program that cannot be started throws std::system_error in the parent (ENOENT, EACCES: Python's
// FileNotFoundError and PermissionError), never a child exiting with 127. The child gets a clean
// slate: only its stdin, stdout, stderr and `pass_fds` are open in it, nothing is blocked in its
// signal mask and every signal has its default disposition.
//
// The loop learns that a child ended from a pidfd it watches like any descriptor (no SIGCHLD
// handler, no thread; a thread per child only where pidfd is missing). A child that has been
// reaped is never signalled: send_signal, terminate and kill do nothing once returncode() is set.
//
// Lifetimes. Process is a handle; copies share one process. Cancelling wait() or communicate()
// leaves the child running, as in Python; kill it yourself (the timeout-then-kill pattern is in
// docs/processes-and-signals.md). A child still running when its last handle goes away keeps
// running and is reaped by the loop when it ends; a child still running when the loop closes is
// killed and reaped then, so a program never leaves a zombie or a descriptor behind.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/coro.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/streams.hpp"
#include "asyncio/transports.hpp"

namespace asyncio {

/// The special values of SubprocessOptions::stdin / stdout / stderr (Python's asyncio.subprocess
/// constants). Any value >= 0 is a descriptor of the parent the child gets in that place.
namespace subprocess {
/// A new pipe, whose other end is the Process's stdin / stdout / stderr stream.
inline constexpr int PIPE = -1;
/// (stderr only) the same place as the child's stdout.
inline constexpr int STDOUT = -2;
/// /dev/null.
inline constexpr int DEVNULL = -3;
}  // namespace subprocess

/// How to start a child (Python's keyword arguments of create_subprocess_exec). An empty
/// std::optional for stdin / stdout / stderr is Python's None: the child inherits the parent's.
struct SubprocessOptions {
  std::optional<int> stdin{};   ///< PIPE, DEVNULL, a descriptor, or inherit
  std::optional<int> stdout{};  ///< PIPE, DEVNULL, a descriptor, or inherit
  std::optional<int> stderr{};  ///< PIPE, DEVNULL, STDOUT, a descriptor, or inherit
  std::string cwd{};            ///< the child's working directory; empty: the parent's
  /// The child's whole environment; none: the parent's. The program is looked up in its PATH.
  std::optional<std::map<std::string, std::string>> env{};
  std::ptrdiff_t limit = DEFAULT_LIMIT;  ///< the buffer limit of the stdout / stderr StreamReaders
  bool start_new_session = false;        ///< setsid() in the child
  std::optional<int> process_group{};    ///< setpgid(0, process_group) in the child (0: a new group)
  std::vector<int> pass_fds{};           ///< descriptors kept open, at the same numbers, in the child
};

class SubprocessTransport;
class Process;

/// The callbacks of a child started with subprocess_exec (Python's asyncio.SubprocessProtocol).
/// `fd` is the child's side: 0 (stdin), 1 (stdout), 2 (stderr). Order: connection_made first;
/// pipe_data_received / pipe_connection_lost for each pipe and process_exited in any order;
/// connection_lost last, once the child has ended and every pipe is closed.
class SubprocessProtocol : public BaseProtocol {
 public:
  /// The child runs and its pipes are connected.
  virtual void connection_made(SubprocessTransport& transport) { (void)transport; }
  /// The child wrote `data` to its stdout (fd 1) or stderr (fd 2). Valid during the call only.
  virtual void pipe_data_received(int fd, std::string_view data) {
    (void)fd;
    (void)data;
  }
  /// One pipe closed: `exc` null at a normal end.
  virtual void pipe_connection_lost(int fd, std::exception_ptr exc) {
    (void)fd;
    (void)exc;
  }
  /// The child has ended (get_returncode() is set).
  virtual void process_exited() {}
};

/// A running child and its pipes (Python's asyncio.SubprocessTransport). close() closes the pipes
/// and kills the child if it still runs.
class SubprocessTransport : public BaseTransport {
 public:
  /// The child's pid.
  virtual int get_pid() const noexcept = 0;
  /// Its exit code, minus the signal that killed it, or nothing while it runs.
  virtual std::optional<int> get_returncode() const noexcept = 0;
  /// The parent's end of the child's pipe `fd` (0, 1, 2), or null when that one is not a pipe.
  virtual std::shared_ptr<Transport> get_pipe_transport(int fd) const = 0;
  /// Sends `sig` to the child; nothing once it has been reaped. std::system_error (ESRCH, as
  /// Python's ProcessLookupError) after close().
  virtual void send_signal(int sig) = 0;
  /// send_signal(SIGTERM).
  virtual void terminate() = 0;
  /// send_signal(SIGKILL).
  virtual void kill() = 0;
};

namespace detail {
class ProcessState;
using SubprocessProtocolFactory = std::function<std::shared_ptr<SubprocessProtocol>()>;
Coro<std::pair<std::shared_ptr<SubprocessTransport>, std::shared_ptr<SubprocessProtocol>>> subprocess_start(
    SubprocessProtocolFactory factory, std::vector<std::string> argv, SubprocessOptions options);
std::vector<std::string> shell_argv(std::string cmd);
SubprocessOptions all_pipes();

/// The argv and options of an exec call, from Python's `program, *args, **options` spelled as
/// C++ arguments: strings (anything a std::string_view can view), ranges of strings, and at most
/// one SubprocessOptions, last.
struct ExecCall {
  std::vector<std::string> argv;
  std::optional<SubprocessOptions> options;

  template <class A>
  void add(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (std::is_same_v<D, SubprocessOptions>) {
      options = std::forward<A>(a);
    } else if constexpr (std::is_convertible_v<const D&, std::string_view>) {
      if (options) throw ValueError("create_subprocess_exec: SubprocessOptions must come last");
      argv.emplace_back(std::string_view(a));
    } else {
      static_assert(std::ranges::input_range<D>, "arguments are strings, ranges of strings, or SubprocessOptions");
      if (options) throw ValueError("create_subprocess_exec: SubprocessOptions must come last");
      for (auto&& s : a) argv.emplace_back(std::string_view(s));
    }
  }
};

template <class... Args>
ExecCall exec_call(std::string program, Args&&... args) {
  ExecCall call;
  call.argv.push_back(std::move(program));
  (call.add(std::forward<Args>(args)), ...);
  return call;
}

template <class F>
using subprocess_protocol_t = typename std::invoke_result_t<F&>::element_type;
template <class F>
Coro<std::pair<std::shared_ptr<SubprocessTransport>, std::shared_ptr<subprocess_protocol_t<F>>>> subprocess_typed(
    F factory, std::vector<std::string> argv, SubprocessOptions options) {
  auto r = co_await subprocess_start(SubprocessProtocolFactory(std::move(factory)), std::move(argv), std::move(options));
  co_return std::pair<std::shared_ptr<SubprocessTransport>, std::shared_ptr<subprocess_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<subprocess_protocol_t<F>>(r.second));
}
Coro<Process> create_process(std::vector<std::string> argv, SubprocessOptions options);
}  // namespace detail

/// Python's loop.subprocess_exec(protocol_factory, program, *args, **options): starts `program`
/// with `args` (strings, or ranges of strings) and connects the pipes that a SubprocessOptions
/// given last asks for (all three when none is given, as Python's defaults) to the protocol
/// `factory` makes. Completes once the protocol's connection_made has run.
///
///   struct Collect : asyncio::SubprocessProtocol {
///     std::string out;
///     void pipe_data_received(int, std::string_view d) override { out += d; }
///   };
///   auto factory = [] { return std::make_shared<Collect>(); };
///   auto [transport, protocol] = co_await asyncio::subprocess_exec(factory, "echo", "hi");
template <class F, class... Args>
auto subprocess_exec(F factory, std::string program, Args&&... args) {
  detail::ExecCall call = detail::exec_call(std::move(program), std::forward<Args>(args)...);
  return detail::subprocess_typed(std::move(factory), std::move(call.argv),
                                  call.options ? std::move(*call.options) : detail::all_pipes());
}
/// Python's loop.subprocess_shell: subprocess_exec of `/bin/sh -c cmd`.
template <class F>
auto subprocess_shell(F factory, std::string cmd, SubprocessOptions options) {
  return detail::subprocess_typed(std::move(factory), detail::shell_argv(std::move(cmd)), std::move(options));
}
/// subprocess_shell with stdin, stdout and stderr all pipes.
template <class F>
auto subprocess_shell(F factory, std::string cmd) {
  return subprocess_shell(std::move(factory), std::move(cmd), detail::all_pipes());
}

/// A child started by create_subprocess_exec / create_subprocess_shell (Python's
/// asyncio.subprocess.Process). Copies share one child.
class Process {
 public:
  /// Library-internal: made by create_subprocess_exec / create_subprocess_shell.
  explicit Process(std::shared_ptr<detail::ProcessState> state);

  /// The child's pid.
  int pid() const noexcept;
  /// Its exit code, minus the signal that killed it (-9 after kill()), or nothing while it runs.
  std::optional<int> returncode() const noexcept;
  /// Waits for the child to end; its returncode. Cancelling the wait leaves the child running.
  Coro<int> wait();
  /// Writes `input` to stdin (if piped) and closes it, reads stdout and stderr (if piped) to their
  /// end, all at once so that no side can block the other, then waits for the child. Returns
  /// (stdout, stderr): empty for one that is not a pipe. Cancelling it leaves the child running.
  Coro<std::pair<std::string, std::string>> communicate(std::string input);
  /// communicate() without input: stdin, if piped, is closed.
  Coro<std::pair<std::string, std::string>> communicate();
  /// Sends `sig`; nothing once the child has been reaped (never a reused pid).
  void send_signal(int sig);
  /// SIGTERM.
  void terminate();
  /// SIGKILL.
  void kill();

  /// The child's stdin when it is a pipe; an empty StreamWriter otherwise.
  StreamWriter stdin;
  /// The child's stdout when it is a pipe.
  std::optional<StreamReader> stdout;
  /// The child's stderr when it is a pipe.
  std::optional<StreamReader> stderr;

 private:
  std::shared_ptr<detail::ProcessState> s_;
};

/// Python's asyncio.create_subprocess_exec(program, *args, **options): starts `program` (looked
/// up in PATH when it has no '/') with `args` — strings, or ranges of strings — and the
/// SubprocessOptions given last, if any (without one the child inherits stdin, stdout and
/// stderr). std::system_error when it cannot be started.
///
///   asyncio::Process p = co_await asyncio::create_subprocess_exec("sleep", "10");
///   p.terminate();
///   co_await p.wait();  // -15
///
///   std::vector<std::string> files = {"a.txt", "b.txt"};
///   auto q = co_await asyncio::create_subprocess_exec("wc", "-l", files, options);
template <class... Args>
Coro<Process> create_subprocess_exec(std::string program, Args&&... args) {
  detail::ExecCall call = detail::exec_call(std::move(program), std::forward<Args>(args)...);
  return detail::create_process(std::move(call.argv), call.options ? std::move(*call.options) : SubprocessOptions());
}
/// Python's asyncio.create_subprocess_shell: `/bin/sh -c cmd`.
///
///   asyncio::SubprocessOptions options;
///   options.stdout = asyncio::subprocess::PIPE;
///   auto p = co_await asyncio::create_subprocess_shell("echo $HOME", options);
///   auto [out, err] = co_await p.communicate();
Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions options);
/// create_subprocess_shell with the child inheriting stdin, stdout and stderr.
Coro<Process> create_subprocess_shell(std::string cmd);

}  // namespace asyncio
#pragma GCC visibility pop
