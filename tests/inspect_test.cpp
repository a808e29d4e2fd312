// SPDX-License-Identifier: MIT
// Await graphs, task tables and trees, and asyncio-inspect against child processes (inspect.hpp).
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "inspect_support.hpp"

using asyncio::CallGraph;
using asyncio::Coro;
using namespace std::chrono_literals;

namespace {

// Each coroutine records the line of its co_await (written on the same line).
std::uint32_t leaf_line, middle_line, top_line, main_line, child_line, cap_line, outer_line;

Coro<void> leaf() { leaf_line = __LINE__; co_await asyncio::sleep(10); }
Coro<void> middle() { middle_line = __LINE__; co_await leaf(); }
Coro<void> top() { top_line = __LINE__; co_await middle(); }

Coro<void> child() { child_line = __LINE__; co_await asyncio::sleep(10); }

Coro<void> await_main(asyncio::Task<void> a) { main_line = __LINE__; co_await a; }
Coro<void> gather_main(asyncio::Task<void> a, asyncio::Task<void> b) { main_line = __LINE__; co_await asyncio::gather(a, b); }
Coro<void> group_main() {
  auto body = [](asyncio::TaskGroup& tg) -> Coro<void> {
    tg.create_task(child(), "c1");
    tg.create_task(child(), "c2");
    co_return;
  };
  // (A co_await written over several lines is reported at its last line by g++.)
  main_line = __LINE__; co_await asyncio::task_group(body);
}
Coro<void> wait_main(asyncio::Task<void> a, asyncio::Task<void> b) {
  std::vector<asyncio::Task<void>> both;
  both.push_back(a);
  both.push_back(b);
  main_line = __LINE__; co_await asyncio::wait(std::move(both));
}

Coro<CallGraph> inner_capture() { cap_line = __LINE__; co_return co_await asyncio::capture_call_graph(); }
Coro<CallGraph> outer_capture() { outer_line = __LINE__; co_return co_await inner_capture(); }

/// Runs `n` iterations of the loop (it stops after each).
void run_iterations(asyncio::EventLoop& loop, int n) {
  for (int i = 0; i < n; ++i) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
}

/// Cancels what is left and closes the loop.
void finish(asyncio::EventLoop& loop) {
  asyncio::cancel_all_tasks(loop);
  loop.close();
}

asyncio::AnyTask task_named(asyncio::EventLoop& loop, const std::string& name) {
  for (asyncio::detail::TaskLink* l = loop.first_task(); l; l = l->next_link) {
    auto* t = static_cast<asyncio::detail::TaskCore*>(l);
    if (t->get_name() == name) return asyncio::AnyTask(t);
  }
  return {};
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

// ---- await graphs ------------------------------------------------------------------------------

TEST(inspectCallGraph, NestedAwaitsAreListedInnermostFirst) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto t = loop->create_task(top(), "worker");
  run_iterations(*loop, 1);
  CallGraph g = asyncio::capture_call_graph(t);
  EXPECT_EQ(g.kind, CallGraph::Kind::task);
  EXPECT_EQ(g.name, "worker");
  EXPECT_EQ(g.task_id, t.core().id());
  EXPECT_EQ(g.state, "waiting");
  EXPECT_EQ(g.waiting_on, "sleep 10 s");
  ASSERT_EQ(g.call_stack.size(), 3u);
  EXPECT_EQ(g.call_stack[0].function, "leaf");
  EXPECT_EQ(g.call_stack[0].line, leaf_line);
  EXPECT_TRUE(ends_with(g.call_stack[0].file, "inspect_test.cpp")) << g.call_stack[0].file;
  EXPECT_EQ(g.call_stack[1].function, "middle");
  EXPECT_EQ(g.call_stack[1].line, middle_line);
  EXPECT_EQ(g.call_stack[2].function, "top");
  EXPECT_EQ(g.call_stack[2].line, top_line);
  EXPECT_TRUE(g.awaited_by.empty());
  EXPECT_EQ(g.call_stack[0].to_string(), "leaf() at inspect_test.cpp:" + std::to_string(leaf_line));
  finish(*loop);
}

TEST(inspectCallGraph, WaitsOnPrimitivesAndSocketsSayWhatTheyWaitFor) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  asyncio::Lock lock;
  asyncio::Queue<int> empty;
  asyncio::Queue<int> full(1);
  full.put_nowait(1);
  auto sockets = asyncio::socketpair();  // not a structured binding: clang 14 cannot capture one
  asyncio::Socket& mine = sockets.first;
  auto hold = [&]() -> Coro<void> { co_await lock.acquire(); co_await asyncio::sleep(100); };
  auto locker = [&]() -> Coro<void> { co_await lock.acquire(); };
  auto getter = [&]() -> Coro<void> { (void)co_await empty.get(); };
  auto putter = [&]() -> Coro<void> { co_await full.put(2); };
  auto reader = [&]() -> Coro<void> { (void)co_await asyncio::sock_recv(mine, 10); };
  auto h = loop->create_task(hold(), "holder");
  auto l = loop->create_task(locker(), "locker");
  auto g = loop->create_task(getter(), "getter");
  auto p = loop->create_task(putter(), "putter");
  auto r = loop->create_task(reader(), "reader");
  run_iterations(*loop, 2);
  EXPECT_EQ(asyncio::capture_call_graph(l).waiting_on, "lock");
  EXPECT_EQ(asyncio::capture_call_graph(g).waiting_on, "queue get");
  EXPECT_EQ(asyncio::capture_call_graph(p).waiting_on, "queue put");
  EXPECT_EQ(asyncio::capture_call_graph(r).waiting_on, "fd " + std::to_string(mine.fileno()));
  finish(*loop);
}

TEST(inspectCallGraph, TaskAwaitedByAnotherTask) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto c = loop->create_task(child(), "c1");
  auto m = loop->create_task(await_main(c), "main");
  run_iterations(*loop, 1);
  CallGraph g = asyncio::capture_call_graph(c);
  ASSERT_EQ(g.awaited_by.size(), 1u);
  const CallGraph& a = g.awaited_by[0];
  EXPECT_EQ(a.kind, CallGraph::Kind::task);
  EXPECT_EQ(a.name, "main");
  ASSERT_EQ(a.call_stack.size(), 1u);
  EXPECT_EQ(a.call_stack[0].function, "await_main");
  EXPECT_EQ(a.call_stack[0].line, main_line);
  EXPECT_EQ(a.waiting_on, "Task 'c1' (id " + std::to_string(c.core().id()) + ")");

  std::string text = asyncio::format_call_graph(g);
  EXPECT_NE(text.find("* Task 'c1'"), std::string::npos) << text;
  EXPECT_NE(text.find("+ Call stack:\n|   child() at inspect_test.cpp:" + std::to_string(child_line)), std::string::npos) << text;
  EXPECT_NE(text.find("+ Awaited by:\n   * Task 'main'"), std::string::npos) << text;
  EXPECT_NE(text.find("|   await_main() at inspect_test.cpp:" + std::to_string(main_line)), std::string::npos) << text;
  finish(*loop);
}

TEST(inspectCallGraph, ChildOfGatherIsAwaitedThroughTheGather) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto a = loop->create_task(child(), "c1");
  auto b = loop->create_task(child(), "c2");
  loop->create_task(gather_main(a, b), "main");
  run_iterations(*loop, 2);
  for (const auto& t : {a, b}) {
    CallGraph g = asyncio::capture_call_graph(t);
    ASSERT_EQ(g.call_stack.size(), 1u);
    EXPECT_EQ(g.call_stack[0].function, "child");
    EXPECT_EQ(g.call_stack[0].line, child_line);
    ASSERT_EQ(g.awaited_by.size(), 1u);
    const CallGraph& gather = g.awaited_by[0];
    EXPECT_EQ(gather.kind, CallGraph::Kind::gather);
    EXPECT_EQ(gather.name, "gather");
    ASSERT_EQ(gather.awaited_by.size(), 1u);
    const CallGraph& m = gather.awaited_by[0];
    EXPECT_EQ(m.name, "main");
    EXPECT_EQ(m.waiting_on, "gather");
    ASSERT_FALSE(m.call_stack.empty());
    EXPECT_EQ(m.call_stack[0].function, "gather_main");
    EXPECT_EQ(m.call_stack[0].line, main_line);
  }
  finish(*loop);
}

TEST(inspectCallGraph, ChildOfTaskGroupIsAwaitedByTheGroupsTask) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  loop->create_task(group_main(), "main");
  run_iterations(*loop, 3);
  asyncio::AnyTask c1 = task_named(*loop, "c1");
  ASSERT_TRUE(c1);
  CallGraph g = asyncio::capture_call_graph(c1);
  ASSERT_EQ(g.call_stack.size(), 1u);
  EXPECT_EQ(g.call_stack[0].function, "child");
  ASSERT_EQ(g.awaited_by.size(), 1u);
  const CallGraph& group = g.awaited_by[0];
  EXPECT_EQ(group.kind, CallGraph::Kind::task_group);
  EXPECT_EQ(group.children, 2u);
  ASSERT_EQ(group.awaited_by.size(), 1u);
  const CallGraph& m = group.awaited_by[0];
  EXPECT_EQ(m.name, "main");
  EXPECT_EQ(m.waiting_on, "TaskGroup (2 tasks)");
  // The group's task waits in TaskGroup::exit, inside task_group(), inside group_main().
  ASSERT_GE(m.call_stack.size(), 3u);
  EXPECT_EQ(m.call_stack.front().function, "exit");
  EXPECT_TRUE(ends_with(m.call_stack.front().file, "task_group.cpp"));
  EXPECT_EQ(m.call_stack.back().function, "group_main");
  EXPECT_EQ(m.call_stack.back().line, main_line);
  finish(*loop);
}

TEST(inspectCallGraph, ChildOfWaitIsAwaitedThroughTheWait) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto a = loop->create_task(child(), "c1");
  auto b = loop->create_task(child(), "c2");
  loop->create_task(wait_main(a, b), "main");
  run_iterations(*loop, 2);
  CallGraph g = asyncio::capture_call_graph(a);
  ASSERT_EQ(g.awaited_by.size(), 1u);
  EXPECT_EQ(g.awaited_by[0].kind, CallGraph::Kind::wait);
  EXPECT_EQ(g.awaited_by[0].children, 2u);
  ASSERT_EQ(g.awaited_by[0].awaited_by.size(), 1u);
  const CallGraph& m = g.awaited_by[0].awaited_by[0];
  EXPECT_EQ(m.name, "main");
  EXPECT_EQ(m.waiting_on, "wait (2 futures)");
  EXPECT_EQ(m.call_stack.back().function, "wait_main");
  EXPECT_EQ(m.call_stack.back().line, main_line);
  finish(*loop);
}

TEST(inspectCallGraph, CurrentTaskFromACoAwait) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  CallGraph g = loop->run_until_complete(loop->create_task(outer_capture(), "me"));
  EXPECT_EQ(g.name, "me");
  EXPECT_EQ(g.state, "running");
  ASSERT_EQ(g.call_stack.size(), 2u);
  EXPECT_EQ(g.call_stack[0].function, "inner_capture");
  EXPECT_EQ(g.call_stack[0].line, cap_line);
  EXPECT_EQ(g.call_stack[1].function, "outer_capture");
  EXPECT_EQ(g.call_stack[1].line, outer_line);
  loop->close();
}

TEST(inspectCallGraph, TaskNotStartedYetIsPending) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto t = loop->create_task(child(), "lazy");
  CallGraph g = asyncio::capture_call_graph(t);
  EXPECT_EQ(g.state, "pending");
  EXPECT_TRUE(g.call_stack.empty());
  EXPECT_EQ(g.created_at.rfind("inspect_test.cpp:", 0), 0u) << g.created_at;
  EXPECT_NE(asyncio::format_call_graph(g).find("pending (created at inspect_test.cpp:"), std::string::npos);
  finish(*loop);
}

TEST(inspectCallGraph, DepthBoundsTheAwaitedByChain) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto c = loop->create_task(child(), "c1");
  auto m = loop->create_task(await_main(c), "main");
  auto outer = loop->create_task(await_main(m), "outer");
  run_iterations(*loop, 1);
  EXPECT_EQ(asyncio::capture_call_graph(c, 0).awaited_by.size(), 0u);
  CallGraph one = asyncio::capture_call_graph(c, 1);
  ASSERT_EQ(one.awaited_by.size(), 1u);
  EXPECT_EQ(one.awaited_by[0].name, "main");
  EXPECT_TRUE(one.awaited_by[0].awaited_by.empty());
  CallGraph all = asyncio::capture_call_graph(c);
  ASSERT_EQ(all.awaited_by.size(), 1u);
  ASSERT_EQ(all.awaited_by[0].awaited_by.size(), 1u);
  EXPECT_EQ(all.awaited_by[0].awaited_by[0].name, "outer");
  finish(*loop);
}

// ---- tables and trees ----------------------------------------------------------------------------

TEST(inspectTaskDump, TableHasOneRowPerTask) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  auto a = loop->create_task(child(), "c1");
  auto b = loop->create_task(child(), "c2");
  loop->create_task(gather_main(a, b), "main");
  run_iterations(*loop, 2);
  std::vector<asyncio::TaskInfo> infos = asyncio::inspect_tasks(*loop);
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_EQ(infos[0].name, "c1");  // oldest first
  EXPECT_EQ(infos[2].name, "main");
  ASSERT_EQ(infos[0].awaited_by.size(), 1u);
  EXPECT_EQ(infos[0].awaited_by[0].name, "main");
  EXPECT_EQ(infos[0].awaited_by[0].via, "gather");

  std::string table = asyncio::format_tasks_table(*loop);
  EXPECT_EQ(table.rfind("ID  ", 0), 0u) << table;
  for (const char* col : {"NAME", "STATE", "COROUTINE", "LOCATION", "WAITING ON", "AWAITED BY"})
    EXPECT_NE(table.find(col), std::string::npos) << col;
  EXPECT_NE(table.find("c1"), std::string::npos);
  EXPECT_NE(table.find("child"), std::string::npos);
  EXPECT_NE(table.find("inspect_test.cpp:" + std::to_string(child_line)), std::string::npos) << table;
  EXPECT_NE(table.find("sleep 10 s"), std::string::npos);
  EXPECT_NE(table.find("via gather"), std::string::npos);
  EXPECT_NE(table.find("3 tasks"), std::string::npos);
  finish(*loop);
}

TEST(inspectTaskDump, JsonWithTaskNamesThatAreNotUtf8IsStillValid) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  loop->create_task(child(), "bad\xff\xfe name");          // stray bytes
  loop->create_task(child(), "cut \xc3");                  // a sequence cut short
  loop->create_task(child(), "caf\xc3\xa9 \"quoted\"\n");  // valid UTF-8, quotes, a newline
  run_iterations(*loop, 2);
  std::string json = asyncio::format_tasks_json(asyncio::inspect_tasks(*loop));
  EXPECT_TRUE(inspect_support::valid_utf8(json)) << json;
  inspect_support::Json doc = inspect_support::JsonParser(json).parse();
  ASSERT_EQ(doc["tasks"].arr.size(), 3u) << json;
  EXPECT_EQ(doc["tasks"].arr[0]["name"].str, "bad?? name");  // the reader shows U+FFFD as '?'
  EXPECT_EQ(doc["tasks"].arr[1]["name"].str, "cut ?");
  EXPECT_EQ(doc["tasks"].arr[2]["name"].str, "caf\xc3\xa9 \"quoted\"\n");
  EXPECT_NE(json.find("bad\\ufffd\\ufffd name"), std::string::npos) << json;
  finish(*loop);
}

TEST(inspectTaskDump, TreePutsAwaitersAboveWhatTheyAwait) {
  auto loop = asyncio::new_event_loop({.virtual_time = true});
  loop->create_task(group_main(), "main");
  run_iterations(*loop, 3);
  std::string tree = asyncio::format_tasks_tree(*loop);
  auto m = tree.find("Task 'main'");
  auto g = tree.find("└── TaskGroup");
  auto c1 = tree.find("    ├── Task 'c1'");
  auto c2 = tree.find("    └── Task 'c2'");
  ASSERT_NE(m, std::string::npos) << tree;
  ASSERT_NE(g, std::string::npos) << tree;
  ASSERT_NE(c1, std::string::npos) << tree;
  ASSERT_NE(c2, std::string::npos) << tree;
  EXPECT_LT(m, g);
  EXPECT_LT(g, c1);
  EXPECT_LT(c1, c2);
  EXPECT_EQ(tree.rfind("Task 'main'", 0), 0u) << tree;  // the root, unindented
  finish(*loop);
}

// ---- asyncio-inspect against other processes -----------------------------------------------------

namespace {

Coro<void> boss(asyncio::Task<void> a, asyncio::Task<void> b) { co_await asyncio::gather(a, b); }

/// How the child process ends once told to quit.
enum class ChildExit { destroy_loop, exit_in_task };

Coro<void> child_main(bool opt_in, bool block, int ready_fd, int quit_fd, ChildExit how) {
  auto& loop = asyncio::get_running_loop();
  if (opt_in) asyncio::enable_inspection(loop);
  auto a = asyncio::create_task(child(), "sleeper-1");
  auto b = asyncio::create_task(child(), "sleeper-2");
  auto chief = asyncio::create_task(boss(a, b), "boss");
  auto quit = loop.create_future<void>();
  loop.add_reader(quit_fd, [quit]() mutable {
    if (!quit.done()) quit.set_result();
  });
  co_await asyncio::sleep(0.01);  // everyone parks
  char c = 'r';
  if (::write(ready_fd, &c, 1) != 1) std::_Exit(3);
  if (block) std::this_thread::sleep_for(3s);  // a step that holds the loop
  co_await quit;
  loop.remove_reader(quit_fd);
  if (how == ChildExit::exit_in_task) std::exit(0);  // no unwinding: the loop is never destroyed
}

/// A child process running child_main; ready once it has written to the pipe.
struct Child {
  pid_t pid = -1;
  int quit_w = -1;

  /// `before_run` runs in the child before its loop is made (environment, signal handlers).
  Child(bool opt_in, bool block, ChildExit how = ChildExit::destroy_loop, void (*before_run)() = nullptr) {
    int ready[2], quit[2];
    if (::pipe(ready) != 0 || ::pipe(quit) != 0) throw std::runtime_error("pipe");
    pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      ::close(quit[1]);
      if (before_run) before_run();
      asyncio::run(child_main(opt_in, block, ready[1], quit[0], how));
      std::_Exit(0);
    }
    ::close(ready[1]);
    ::close(quit[0]);
    quit_w = quit[1];
    pollfd p{ready[0], POLLIN, 0};
    char c;
    bool ok = ::poll(&p, 1, 10000) == 1 && ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (!ok) throw std::runtime_error("the child did not start");
  }
  /// Asks the child to finish and waits; returns its exit status.
  int stop() {
    ::close(quit_w);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  /// Sends `sig` and waits; returns the raw wait status.
  int kill_with(int sig) {
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    ::close(quit_w);
    return status;
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

std::string inspect_cli() { return inspect_support::build_dir() + "/tools/asyncio-inspect"; }

TEST(inspectCli, PsAndPstreeOfAProgramThatOptedIn) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(true, false);
  std::string out;
  int rc = inspect_support::run_command(inspect_cli() + " ps " + std::to_string(c.pid), out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("ID  ", 0), 0u) << out;
  for (const char* s : {"sleeper-1", "sleeper-2", "boss", "sleep 10 s", "via gather", "inspect_test.cpp:"})
    EXPECT_NE(out.find(s), std::string::npos) << s << "\n" << out;

  rc = inspect_support::run_command(inspect_cli() + " pstree " + std::to_string(c.pid), out);
  EXPECT_EQ(rc, 0) << out;
  auto boss_at = out.find("Task 'boss'");
  auto gather_at = out.find("└── gather");
  auto s1 = out.find("├── Task 'sleeper-1'");
  ASSERT_NE(boss_at, std::string::npos) << out;
  ASSERT_NE(gather_at, std::string::npos) << out;
  ASSERT_NE(s1, std::string::npos) << out;
  EXPECT_LT(boss_at, gather_at);
  EXPECT_LT(gather_at, s1);

  std::string path = asyncio::inspection_socket_path(c.pid);
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  EXPECT_EQ(c.stop(), 0);
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "the socket outlived the program: " << path;
}

bool socket_exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

void set_inspect_env() { ::setenv("ASYNCIO_INSPECT", "1", 1); }

extern "C" void exit_seven(int) { std::_Exit(7); }
void own_sigterm_handler_and_inspect_env() {
  struct sigaction sa{};
  sa.sa_handler = exit_seven;
  ::sigaction(SIGTERM, &sa, nullptr);
  set_inspect_env();
}

}  // namespace

TEST(inspectCli, EnvironmentVariableEnablesInspectionWithoutCodeChanges) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(false, false, ChildExit::destroy_loop, set_inspect_env);  // never calls enable_inspection
  std::string out;
  int rc = inspect_support::run_command(inspect_cli() + " ps " + std::to_string(c.pid), out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("sleeper-1"), std::string::npos) << out;
  EXPECT_EQ(c.stop(), 0);
}

TEST(inspectCli, JsonTableIsValidJsonWithEveryTask) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(true, false);
  std::string out;
  ASSERT_EQ(inspect_support::run_command(inspect_cli() + " ps --json " + std::to_string(c.pid), out), 0) << out;
  inspect_support::Json doc = inspect_support::JsonParser(out).parse();
  std::map<std::string, const inspect_support::Json*> by_name;
  for (const auto& t : doc["tasks"].arr) by_name[t["name"].str] = &t;
  ASSERT_TRUE(by_name.count("sleeper-1")) << out;
  ASSERT_TRUE(by_name.count("boss")) << out;
  const auto& s1 = *by_name["sleeper-1"];
  EXPECT_EQ(s1["state"].str, "waiting");
  EXPECT_EQ(s1["waiting_on"].str, "sleep 10 s");
  ASSERT_FALSE(s1["call_stack"].arr.empty()) << out;
  EXPECT_EQ(s1["call_stack"].arr[0]["function"].str, "child");
  ASSERT_EQ(s1["awaited_by"].arr.size(), 1u) << out;
  EXPECT_EQ(s1["awaited_by"].arr[0]["name"].str, "boss");
  EXPECT_EQ(s1["awaited_by"].arr[0]["via"].str, "gather");
  EXPECT_EQ(c.stop(), 0);
}

TEST(inspectCli, JsonGraphIsValidJsonWithTheAwaitChain) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(true, false);
  std::string out;
  ASSERT_EQ(inspect_support::run_command(inspect_cli() + " ps --json " + std::to_string(c.pid), out), 0) << out;
  std::string id;
  inspect_support::Json table = inspect_support::JsonParser(out).parse();
  for (const auto& t : table["tasks"].arr)
    if (t["name"].str == "sleeper-2") id = std::to_string(static_cast<long>(t["id"].num));
  ASSERT_FALSE(id.empty()) << out;
  ASSERT_EQ(inspect_support::run_command(inspect_cli() + " --json graph " + std::to_string(c.pid) + " " + id, out), 0) << out;
  inspect_support::Json g = inspect_support::JsonParser(out).parse();
  EXPECT_EQ(g["kind"].str, "task");
  EXPECT_EQ(g["name"].str, "sleeper-2");
  ASSERT_EQ(g["awaited_by"].arr.size(), 1u) << out;
  EXPECT_EQ(g["awaited_by"].arr[0]["kind"].str, "gather");
  ASSERT_EQ(g["awaited_by"].arr[0]["awaited_by"].arr.size(), 1u) << out;
  EXPECT_EQ(g["awaited_by"].arr[0]["awaited_by"].arr[0]["name"].str, "boss");
  EXPECT_EQ(c.stop(), 0);
}

TEST(inspectCli, SocketIsRemovedWhenTheProgramExitsWithoutDestroyingItsLoop) {
  Child c(true, false, ChildExit::exit_in_task);
  std::string path = asyncio::inspection_socket_path(c.pid);
  ASSERT_TRUE(socket_exists(path)) << path;
  EXPECT_EQ(c.stop(), 0);
  EXPECT_FALSE(socket_exists(path)) << "left behind by exit(): " << path;
}

TEST(inspectCli, SocketIsRemovedWhenSigtermKillsTheProgram) {
  Child c(true, false);
  std::string path = asyncio::inspection_socket_path(c.pid);
  ASSERT_TRUE(socket_exists(path)) << path;
  int status = c.kill_with(SIGTERM);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "the program must still die of SIGTERM";
  EXPECT_FALSE(socket_exists(path)) << "left behind by SIGTERM: " << path;
}

TEST(inspectCli, SocketIsRemovedWhenSigintKillsTheProgram) {
  Child c(false, false, ChildExit::destroy_loop, set_inspect_env);
  std::string path = asyncio::inspection_socket_path(c.pid);
  ASSERT_TRUE(socket_exists(path)) << path;
  int status = c.kill_with(SIGINT);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "the program must still die of SIGINT";
  EXPECT_FALSE(socket_exists(path)) << "left behind by SIGINT: " << path;
}

TEST(inspectCli, ProgramsOwnSignalHandlerIsKept) {
  Child c(false, false, ChildExit::destroy_loop, own_sigterm_handler_and_inspect_env);
  std::string path = asyncio::inspection_socket_path(c.pid);
  ASSERT_TRUE(socket_exists(path)) << path;
  int status = c.kill_with(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << "the program's handler did not run";
  ::unlink(path.c_str());  // its handler's _Exit skips every clean-up, ours included
}

TEST(inspectCli, ProgramThatDidNotOptInGetsAClearMessage) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(false, false);
  std::string out;
  auto t0 = std::chrono::steady_clock::now();
  int rc = inspect_support::run_command(inspect_cli() + " ps " + std::to_string(c.pid), out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);  // no hang
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("does not accept inspection"), std::string::npos) << out;
  EXPECT_NE(out.find("enable_inspection"), std::string::npos) << out;
  EXPECT_EQ(c.stop(), 0);
}

TEST(inspectCli, NoSuchProcess) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  std::string out;
  pid_t pid = ::fork();  // a PID that surely does not exist any more
  if (pid == 0) std::_Exit(0);
  ::waitpid(pid, nullptr, 0);
  int rc = inspect_support::run_command(inspect_cli() + " ps " + std::to_string(pid), out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no process with PID"), std::string::npos) << out;
}

TEST(inspectCli, BlockedLoopTimesOutWithAMessage) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  Child c(true, true);
  std::string out;
  auto t0 = std::chrono::steady_clock::now();
  int rc = inspect_support::run_command(inspect_cli() + " --timeout 0.5 ps " + std::to_string(c.pid), out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("did not answer within 0.5 s"), std::string::npos) << out;
  EXPECT_NE(out.find("blocked"), std::string::npos) << out;
  EXPECT_EQ(c.stop(), 0);
}

TEST(inspectCli, UsageErrors) {
  if (!inspect_support::executable(inspect_cli())) GTEST_SKIP() << "not built: " << inspect_cli();
  std::string out;
  EXPECT_EQ(inspect_support::run_command(inspect_cli(), out), 2);
  EXPECT_NE(out.find("usage"), std::string::npos);
  EXPECT_EQ(inspect_support::run_command(inspect_cli() + " top 1", out), 2);
}

// ---- the server, in process ---------------------------------------------------------------------

TEST(inspectServer, EnableTwiceIsIdempotentAndAnotherLoopIsRefused) {
  auto loop = asyncio::new_event_loop();
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/insp-" + std::to_string(::getpid()) + ".sock";
  EXPECT_EQ(asyncio::enable_inspection(*loop, path), path);
  EXPECT_EQ(asyncio::enable_inspection(*loop, path), path);
  auto other = asyncio::new_event_loop();
  EXPECT_THROW(asyncio::enable_inspection(*other, path + "2"), asyncio::RuntimeError);
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(asyncio::disable_inspection(*loop));
  EXPECT_FALSE(asyncio::disable_inspection(*loop));
  EXPECT_NE(::stat(path.c_str(), &st), 0);
  // Now the other loop may have it; destroying the loop removes the socket.
  EXPECT_EQ(asyncio::enable_inspection(*other, path), path);
  other.reset();
  EXPECT_NE(::stat(path.c_str(), &st), 0);
  loop->close();
}

TEST(inspectServer, SocketPathIsPerProcess) {
  std::string p = asyncio::inspection_socket_path(1234);
  EXPECT_TRUE(ends_with(p, "/asyncio-inspect-1234.sock")) << p;
  auto candidates = asyncio::inspection_socket_candidates(1234);
  ASSERT_FALSE(candidates.empty());
  EXPECT_EQ(candidates.front(), p);
  EXPECT_EQ(candidates.back(), "/tmp/asyncio-inspect-1234.sock");
}
