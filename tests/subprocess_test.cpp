// SPDX-License-Identifier: MIT
// Subprocesses: create_subprocess_exec / create_subprocess_shell and Process, the low-level
// subprocess_exec with SubprocessProtocol, the pidfd and thread child watchers, and what a child
// inherits. Real processes: /bin/sh, cat, sleep, true, false.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "net_support.hpp"

using asyncio::Coro;
using asyncio::Process;
using asyncio::SubprocessOptions;
using asyncio::subprocess::DEVNULL;
using asyncio::subprocess::PIPE;
using asyncio::subprocess::STDOUT;
using net_test::run_loop;

namespace {

SubprocessOptions piped_out() {
  SubprocessOptions o;
  o.stdout = PIPE;
  return o;
}

SubprocessOptions piped_all() {
  SubprocessOptions o;
  o.stdin = o.stdout = o.stderr = PIPE;
  return o;
}

/// Runs `cmd` with sh, stdout piped; its output and returncode.
Coro<std::pair<std::string, int>> shell_output(std::string cmd, SubprocessOptions options = piped_out()) {
  Process p = co_await asyncio::create_subprocess_shell(std::move(cmd), std::move(options));
  auto [out, err] = co_await p.communicate();
  (void)err;
  co_return std::pair<std::string, int>(out, *p.returncode());
}

/// True if this process has no child left, running or zombie.
bool no_children() {
  int status;
  return ::waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD;
}

/// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

// ---- starting and output -----------------------------------------------------------------------------

TEST(Subprocess, ExecReadsALineFromStdout) {
  auto [line, code] = run_loop([]() -> Coro<std::pair<std::string, int>> {
    Process p = co_await asyncio::create_subprocess_exec("echo", "hello", piped_out());
    std::string l = co_await p.stdout->readline();
    int c = co_await p.wait();
    co_return std::pair<std::string, int>(l, c);
  }());
  EXPECT_EQ(line, "hello\n");
  EXPECT_EQ(code, 0);
}

TEST(Subprocess, ShellRunsThroughBinSh) {
  auto [out, code] = run_loop(shell_output("echo $((40 + 2))"));
  EXPECT_EQ(out, "42\n");
  EXPECT_EQ(code, 0);
}

TEST(Subprocess, ReturncodeIsTheExitStatus) {
  EXPECT_EQ(run_loop(shell_output("exit 3")).second, 3);
  EXPECT_EQ(run_loop([]() -> Coro<int> {
              Process p = co_await asyncio::create_subprocess_exec("false");
              co_return co_await p.wait();
            }()),
            1);
}

TEST(Subprocess, PidIsTheChildsAndReturncodeIsEmptyWhileItRuns) {
  run_loop([]() -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    EXPECT_GT(p.pid(), 0);
    EXPECT_EQ(::kill(p.pid(), 0), 0);
    EXPECT_FALSE(p.returncode().has_value());
    p.kill();
    co_await p.wait();
  }());
}

TEST(Subprocess, KillThenWaitGivesMinusNine) {
  int code = run_loop([]() -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    p.kill();
    co_return co_await p.wait();
  }());
  EXPECT_EQ(code, -SIGKILL);
}

TEST(Subprocess, TerminateGivesMinusFifteen) {
  int code = run_loop([]() -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    p.terminate();
    co_return co_await p.wait();
  }());
  EXPECT_EQ(code, -SIGTERM);
}

TEST(Subprocess, SendSignalDeliversTheSignal) {
  int code = run_loop([]() -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    p.send_signal(SIGUSR1);
    co_return co_await p.wait();
  }());
  EXPECT_EQ(code, -SIGUSR1);
}

TEST(Subprocess, SignalsAfterTheChildWasReapedAreIgnored) {
  run_loop([]() -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("true");
    EXPECT_EQ(co_await p.wait(), 0);
    // Reaped: its pid may already belong to someone else, so nothing may be sent to it.
    EXPECT_NO_THROW(p.kill());
    EXPECT_NO_THROW(p.send_signal(SIGTERM));
    EXPECT_EQ(*p.returncode(), 0);
  }());
}

TEST(Subprocess, SignalAfterTheTransportClosedIsProcessLookupError) {
  run_loop([]() -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("true");
    co_await p.wait();
    for (int i = 0; i < 5; ++i) co_await asyncio::sleep(0);  // connection_lost has run
    try {
      p.kill();
      ADD_FAILURE() << "no ProcessLookupError";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ESRCH);
    }
  }());
}

// ---- failures to start -------------------------------------------------------------------------------

TEST(Subprocess, MissingProgramIsENOENTInTheParent) {
  for (const char* program : {"/nonexistent/program", "no-such-program-anywhere"}) {
    try {
      run_loop(asyncio::create_subprocess_exec(program));
      ADD_FAILURE() << program << " started";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT) << program;
    }
  }
  EXPECT_TRUE(no_children());
}

TEST(Subprocess, NonExecutableProgramIsEACCES) {
  net_test::TempDir dir;
  std::string path = dir.file("script");
  std::ofstream(path) << "#!/bin/sh\necho no\n";
  ::chmod(path.c_str(), 0644);
  try {
    run_loop(asyncio::create_subprocess_exec(path));
    ADD_FAILURE() << "started";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EACCES);
  }
}

TEST(Subprocess, BadCwdFailsInTheParent) {
  SubprocessOptions o;
  o.cwd = "/nonexistent-directory";
  EXPECT_THROW(run_loop(asyncio::create_subprocess_exec("true", o)), std::system_error);
  EXPECT_TRUE(no_children());
}

TEST(Subprocess, StdoutCannotBeSTDOUT) {
  SubprocessOptions o;
  o.stdout = STDOUT;
  EXPECT_THROW(run_loop(asyncio::create_subprocess_exec("true", o)), asyncio::ValueError);
}

TEST(Subprocess, SpawningWithoutDescriptorsLeftFailsCleanly) {
  // UBSan checks the dynamic type of the std::system_error thrown at EMFILE, and on a first
  // sight of that type probes memory through a pipe, which cannot be made at EMFILE: it would
  // report a false "does not point to an object". One throw beforehand fills its cache.
  try {
    throw std::system_error(EMFILE, std::system_category(), "warm-up");
  } catch (const std::system_error&) {
  }
  int before = net_test::count_open_fds();
  {
    net_test::FdLimit limit(static_cast<rlim_t>(before + 8));
    try {
      run_loop([]() -> Coro<void> {
        // The loop needs a few descriptors itself; then the pipes run out.
        std::vector<Process> held;
        SubprocessOptions pipes = piped_all();  // named: g++ 12 and a throwing co_await
        for (int i = 0; i < 8; ++i) held.push_back(co_await asyncio::create_subprocess_exec("sleep", "30", pipes));
      }());
      ADD_FAILURE() << "no EMFILE";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EMFILE) << e.what();
    }
  }
  EXPECT_EQ(net_test::count_open_fds(), before);
  EXPECT_TRUE(no_children());  // the started ones were killed and reaped when the loop closed
}

// ---- pipes and communicate ---------------------------------------------------------------------------

TEST(Subprocess, CommunicatePushesSixteenMebibytesThroughCatBothWays) {
  std::string input(16 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : input) c = static_cast<char>(rng());
  std::string out = run_loop([](std::string in) -> Coro<std::string> {
    SubprocessOptions o;
    o.stdin = o.stdout = PIPE;
    Process p = co_await asyncio::create_subprocess_exec("cat", o);
    auto [got, err] = co_await p.communicate(std::move(in));
    EXPECT_EQ(*p.returncode(), 0);
    co_return got;
  }(input), 120.0);
  EXPECT_TRUE(out == input) << out.size() << " bytes back of " << input.size();
}

TEST(Subprocess, CommunicateSeparatesStdoutAndStderr) {
  auto [out, err] = run_loop([]() -> Coro<std::pair<std::string, std::string>> {
    SubprocessOptions o;
    o.stdout = o.stderr = PIPE;
    Process p = co_await asyncio::create_subprocess_shell("echo out; echo err >&2", o);
    co_return co_await p.communicate();
  }());
  EXPECT_EQ(out, "out\n");
  EXPECT_EQ(err, "err\n");
}

TEST(Subprocess, StderrCanGoToStdout) {
  SubprocessOptions o;
  o.stdout = PIPE;
  o.stderr = STDOUT;
  EXPECT_EQ(run_loop(shell_output("echo out; echo err >&2", o)).first, "out\nerr\n");
}

TEST(Subprocess, DevNullGivesEofAndSwallowsOutput) {
  SubprocessOptions o;
  o.stdin = DEVNULL;
  o.stdout = PIPE;
  EXPECT_EQ(run_loop(shell_output("cat; echo end", o)).first, "end\n");
  SubprocessOptions quiet;
  quiet.stdout = DEVNULL;
  int code = run_loop([](SubprocessOptions q) -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_shell("echo lost", q);
    EXPECT_FALSE(p.stdout.has_value());
    co_return co_await p.wait();
  }(quiet));
  EXPECT_EQ(code, 0);
}

TEST(Subprocess, AChildThatClosesStdinEarlyDoesNotBreakCommunicate) {
  std::string out = run_loop([]() -> Coro<std::string> {
    SubprocessOptions o;
    o.stdin = o.stdout = PIPE;
    Process p = co_await asyncio::create_subprocess_shell("exec 0<&-; echo done", o);
    auto [got, err] = co_await p.communicate(std::string(4 << 20, 'x'));
    co_return got;
  }());
  EXPECT_EQ(out, "done\n");
}

TEST(Subprocess, StdinStreamWriterFeedsTheChild) {
  std::string out = run_loop([]() -> Coro<std::string> {
    SubprocessOptions o;
    o.stdin = o.stdout = PIPE;
    Process p = co_await asyncio::create_subprocess_exec("cat", o);
    p.stdin.write("one\n");
    co_await p.stdin.drain();
    std::string first = co_await p.stdout->readline();
    p.stdin.write("two\n");
    p.stdin.close();
    std::string rest = co_await p.stdout->read();
    co_await p.wait();
    co_return first + rest;
  }());
  EXPECT_EQ(out, "one\ntwo\n");
}

TEST(Subprocess, LimitAppliesToTheStdoutReader) {
  SubprocessOptions o = piped_out();
  o.limit = 16;
  EXPECT_THROW(run_loop([](SubprocessOptions opts) -> Coro<void> {
                 Process p = co_await asyncio::create_subprocess_shell("printf '%040d\\n' 0", opts);
                 co_await p.stdout->readline();
               }(o)),
               asyncio::ValueError);  // LimitOverrunError is a ValueError
}

// ---- what the child gets ------------------------------------------------------------------------------

TEST(Subprocess, CwdSetsTheWorkingDirectory) {
  SubprocessOptions o = piped_out();
  o.cwd = "/tmp";
  EXPECT_EQ(run_loop(shell_output("pwd", o)).first, "/tmp\n");
}

TEST(Subprocess, EnvReplacesTheEnvironmentAndItsPathFindsTheProgram) {
  SubprocessOptions o = piped_out();
  o.env = std::map<std::string, std::string>{{"GREETING", "hi"}, {"PATH", "/usr/bin:/bin"}};
  auto [out, code] = run_loop([](SubprocessOptions opts) -> Coro<std::pair<std::string, int>> {
    Process p = co_await asyncio::create_subprocess_exec("env", opts);
    auto [got, err] = co_await p.communicate();
    co_return std::pair<std::string, int>(got, *p.returncode());
  }(o));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "GREETING=hi\nPATH=/usr/bin:/bin\n");
}

TEST(Subprocess, PassFdsKeepsADescriptorAtItsNumber) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  SubprocessOptions o;
  o.pass_fds = {fds[1]};
  int code = run_loop([](std::string cmd, SubprocessOptions opts) -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_shell(cmd, opts);
    co_return co_await p.wait();
  }("echo through >&" + std::to_string(fds[1]), o));
  ::close(fds[1]);
  char buf[32] = {};
  EXPECT_EQ(code, 0);
  EXPECT_EQ(::read(fds[0], buf, sizeof buf), 8);
  EXPECT_STREQ(buf, "through\n");
  ::close(fds[0]);
}

TEST(Subprocess, NoOtherDescriptorLeaksIntoTheChild) {
  int leaky[2];
  ASSERT_EQ(::pipe(leaky), 0);  // not close-on-exec, on purpose
  std::string out = run_loop(shell_output("ls /proc/$$/fd")).first;
  ::close(leaky[0]);
  ::close(leaky[1]);
  std::istringstream lines(out);
  std::vector<std::string> fds;
  for (std::string fd; lines >> fd;) fds.push_back(fd);
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"})) << out;
}

TEST(Subprocess, TheChildStartsWithNoBlockedOrIgnoredSignal) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &block, &old);
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &previous);
  std::string out = run_loop(shell_output("grep -E '^Sig(Blk|Ign)' /proc/self/status")).first;
  ::sigaction(SIGPIPE, &previous, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  unsigned long long blocked = 0, ignored = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "SigBlk:\t%llx\nSigIgn:\t%llx", &blocked, &ignored), 2) << out;
  EXPECT_EQ(blocked, 0u);
  // glibc's posix_spawn leaves its own two internal signals (32 and 33, below SIGRTMIN, which
  // glibc hides from programs and sets up again in every glibc program) ignored in the child;
  // every signal a program can name has its default disposition.
  constexpr unsigned long long kGlibcInternal = (1ull << 31) | (1ull << 32);
  EXPECT_EQ(ignored & ~kGlibcInternal, 0u) << out;
}

TEST(Subprocess, StartNewSessionMakesTheChildASessionLeader) {
  SubprocessOptions o;
  o.start_new_session = true;
  run_loop([](SubprocessOptions opts) -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30", opts);
    EXPECT_EQ(::getsid(p.pid()), p.pid());
    p.kill();
    co_await p.wait();
  }(o));
}

TEST(Subprocess, ProcessGroupZeroMakesANewGroup) {
  SubprocessOptions o;
  o.process_group = 0;
  run_loop([](SubprocessOptions opts) -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30", opts);
    EXPECT_EQ(::getpgid(p.pid()), p.pid());
    EXPECT_NE(::getpgid(p.pid()), ::getpgrp());
    p.kill();
    co_await p.wait();
  }(o));
}

// ---- cancellation and lifetimes -----------------------------------------------------------------------

TEST(Subprocess, CancellingWaitLeavesTheChildRunning) {
  run_loop([]() -> Coro<void> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    EXPECT_THROW(co_await asyncio::wait_for(p.wait(), 0.05), asyncio::TimeoutError);
    EXPECT_FALSE(p.returncode().has_value());
    EXPECT_EQ(::kill(p.pid(), 0), 0);
    p.kill();  // the timeout-then-kill pattern
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
  }());
}

TEST(Subprocess, CancellingCommunicateLeavesTheChildRunning) {
  run_loop([]() -> Coro<void> {
    SubprocessOptions o;
    o.stdout = PIPE;
    Process p = co_await asyncio::create_subprocess_shell("echo partial; exec sleep 30", o);
    EXPECT_THROW(co_await asyncio::wait_for(p.communicate(), 0.2), asyncio::TimeoutError);
    EXPECT_FALSE(p.returncode().has_value());
    p.kill();
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
  }());
}

TEST(Subprocess, TheLoopClosingKillsAndReapsAChildStillRunning) {
  pid_t pid = run_loop([]() -> Coro<pid_t> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30", piped_all());
    co_return p.pid();
  }());
  EXPECT_EQ(::kill(pid, 0), -1);  // gone, and reaped: no zombie keeps the pid
  EXPECT_TRUE(no_children());
}

TEST(Subprocess, AChildWhoseHandleWasDroppedIsStillReaped) {
  run_loop([]() -> Coro<void> {
    pid_t pid;
    {
      Process p = co_await asyncio::create_subprocess_exec("true");
      pid = p.pid();
    }
    for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) co_await asyncio::sleep(0.01);
    EXPECT_EQ(::kill(pid, 0), -1);
  }());
  EXPECT_TRUE(no_children());
}

TEST(Subprocess, FiveHundredChildrenFiftyAtATimeLeaveNoZombieAndNoDescriptor) {
  int before = net_test::count_open_fds();
  int ok = run_loop([]() -> Coro<int> {
    asyncio::Semaphore slots(50);
    int zero = 0;
    auto one = [&]() -> Coro<void> {
      co_await slots.acquire();
      try {
        Process p = co_await asyncio::create_subprocess_exec("true", piped_out());
        auto [out, err] = co_await p.communicate();
        if (*p.returncode() == 0) ++zero;
      } catch (...) {
        slots.release();
        throw;
      }
      slots.release();
    };
    std::vector<Coro<void>> all;
    for (int i = 0; i < 500; ++i) all.push_back(one());
    co_await asyncio::gather(std::move(all));
    co_return zero;
  }(), 120.0);
  EXPECT_EQ(ok, 500);
  EXPECT_EQ(net_test::count_open_fds(), before);
  EXPECT_TRUE(no_children());
}

// ---- the thread watcher (where pidfd is missing) ---------------------------------------------------------

TEST(ThreadChildWatcher, SeesExitsAndKills) {
  ScopedEnv env("ASYNCIO_CHILD_WATCHER", "thread");
  EXPECT_EQ(run_loop(shell_output("echo threaded")).first, "threaded\n");
  int code = run_loop([]() -> Coro<int> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    p.kill();
    co_return co_await p.wait();
  }());
  EXPECT_EQ(code, -SIGKILL);
  EXPECT_TRUE(no_children());
}

TEST(ThreadChildWatcher, ReapsAtLoopClose) {
  ScopedEnv env("ASYNCIO_CHILD_WATCHER", "thread");
  pid_t pid = run_loop([]() -> Coro<pid_t> {
    Process p = co_await asyncio::create_subprocess_exec("sleep", "30");
    co_return p.pid();
  }());
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_TRUE(no_children());
}

// ---- the low level: subprocess_exec and SubprocessProtocol ----------------------------------------------

namespace {

struct Recorder : asyncio::SubprocessProtocol {
  std::vector<std::string> events;
  std::string out;
  asyncio::Future<void> lost = asyncio::get_running_loop().create_future<void>();
  void connection_made(asyncio::SubprocessTransport&) override { events.push_back("made"); }
  void pipe_data_received(int fd, std::string_view data) override {
    if (fd == 1) out += data;
  }
  void pipe_connection_lost(int fd, std::exception_ptr) override { events.push_back("pipe" + std::to_string(fd)); }
  void process_exited() override { events.push_back("exited"); }
  void connection_lost(std::exception_ptr) override {
    events.push_back("lost");
    lost.set_result();
  }
};

}  // namespace

TEST(SubprocessProtocol, CallbacksComeInAsyncioOrder) {
  run_loop([]() -> Coro<void> {
    auto factory = [] { return std::make_shared<Recorder>(); };
    auto [transport, protocol] = co_await asyncio::subprocess_exec(factory, "echo", "low");
    co_await protocol->lost;
    EXPECT_EQ(protocol->out, "low\n");
    auto& ev = protocol->events;
    EXPECT_EQ(ev.front(), "made");
    EXPECT_EQ(ev.back(), "lost");
    EXPECT_EQ(ev.size(), 6u);  // made, pipe0, pipe1, pipe2, exited (in any order), lost
    EXPECT_EQ(transport->get_returncode(), 0);
  }());
}

TEST(SubprocessProtocol, PipeTransportsExistOnlyForPipes) {
  run_loop([]() -> Coro<void> {
    auto factory = [] { return std::make_shared<Recorder>(); };
    SubprocessOptions o;
    o.stdout = PIPE;
    auto [transport, protocol] = co_await asyncio::subprocess_exec(factory, "true", o);
    EXPECT_EQ(transport->get_pipe_transport(0), nullptr);
    EXPECT_NE(transport->get_pipe_transport(1), nullptr);
    EXPECT_EQ(transport->get_pipe_transport(2), nullptr);
    EXPECT_GT(transport->get_pid(), 0);
    co_await protocol->lost;
  }());
}

TEST(SubprocessProtocol, CloseKillsARunningChild) {
  run_loop([]() -> Coro<void> {
    auto factory = [] { return std::make_shared<Recorder>(); };
    auto [transport, protocol] = co_await asyncio::subprocess_shell(factory, "sleep 30");
    transport->close();
    EXPECT_TRUE(transport->is_closing());
    co_await protocol->lost;
    EXPECT_EQ(transport->get_returncode(), -SIGKILL);
  }());
}
