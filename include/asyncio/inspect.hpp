// SPDX-License-Identifier: MIT
// Seeing inside a running program: await graphs and task dumps (Python 3.14's
// asyncio.capture_call_graph / print_call_graph and `python -m asyncio ps|pstree PID`).
//
// Await graph of one task — the coroutines it is suspended in, innermost first, each with its
// function and the file:line of the co_await it waits at, and who waits for the task (other
// tasks, a gather, a TaskGroup, a wait()):
//
//   asyncio::print_call_graph(task);                    // any task of the running loop
//   co_await asyncio::print_call_graph();               // the current task (note the co_await)
//   asyncio::CallGraph g = asyncio::capture_call_graph(task);
//
//   * Task 'worker-1' (id 2) waiting: sleep 1 s
//   + Call stack:
//   |   fetch() at inspect_tasks.cpp:21
//   |   worker() at inspect_tasks.cpp:30
//   + Awaited by:
//      * TaskGroup (2 tasks)
//         * Task 'main' (id 1) waiting: future
//         ...
//
// Every task of a loop, as a table like `ps` and a tree like `pstree` (awaiters above the tasks
// they await):
//
//   std::fputs(asyncio::format_tasks_table(loop).c_str(), stdout);
//   std::fputs(asyncio::format_tasks_tree(loop).c_str(), stdout);
//
// From outside the program: after one call to enable_inspection(loop), the command
// `asyncio-inspect ps PID` (or `pstree PID`), built with the library, prints the same table or
// tree. The loop itself serves a Unix socket (with add_reader, between steps), so the dump is a
// consistent snapshot and the program is never stopped; nothing runs while nobody asks.
//
// Locations come from std::source_location-style builtins recorded at each co_await: no debug
// information is needed. All functions here run on the loop's thread.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

/// One coroutine of an await chain.
struct FrameInfo {
  std::string function;  ///< "fetch" (unqualified, as __func__); "" if unknown
  std::string file;      ///< the source file as compiled
  std::uint32_t line = 0;  ///< The line of the co_await (0 if unknown).
  /// "fetch() at file.cpp:21" (base name of the file).
  std::string to_string() const;
};

/// Python's FutureCallGraph: a task (or a gather, TaskGroup, wait) and who waits for it.
struct CallGraph {
  /// What a node of the graph is.
  enum class Kind { task, gather, task_group, wait };
  Kind kind = Kind::task;  ///< Which of the four this node is.
  std::uint64_t task_id = 0;           ///< tasks
  std::string name;                    ///< the task's name; for the others "gather", "TaskGroup", "wait"
  std::string state;                   ///< tasks: "running", "ready", "waiting", "pending" (not started), "done"
  std::string created_at;              ///< tasks: "file.cpp:12"
  std::size_t children = 0;            ///< gather, TaskGroup, wait: how many futures it waits for
  std::vector<FrameInfo> call_stack;   ///< tasks: innermost coroutine first
  std::string waiting_on;              ///< tasks: "sleep 1 s", "Task 'B' (id 3)", "gather", "lock", ...
  std::vector<CallGraph> awaited_by;   ///< who waits for this one (recursively)
};

namespace detail {
class CoroPromiseBase;
CallGraph capture_call_graph_from(CoroPromiseBase* innermost, std::size_t depth);
struct CaptureCallGraphHere {
  using is_asyncio_awaitable = void;
  std::size_t depth;
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  CallGraph await_resume() const;
};
struct PrintCallGraphHere {
  using is_asyncio_awaitable = void;
  std::FILE* out;
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const;
};
}  // namespace detail

/// The await graph of `task` (of the running loop's thread). A running task shows only its top
/// coroutine; inside a task, `co_await capture_call_graph()` gives the full chain of the current one.
/// `depth` bounds how far "awaited by" is followed.
CallGraph capture_call_graph(const AnyTask& task, std::size_t depth = 16);
/// The current task's graph, from the co_await where it is called: `co_await capture_call_graph()`.
[[nodiscard("co_await it")]] inline detail::CaptureCallGraphHere capture_call_graph() { return {16}; }
/// Renders a graph as Python's format_call_graph does.
std::string format_call_graph(const CallGraph& graph);
/// Prints `task`'s graph.
void print_call_graph(const AnyTask& task, std::FILE* out = stdout);
/// Prints the current task's graph: `co_await print_call_graph()`.
[[nodiscard("co_await it")]] inline detail::PrintCallGraphHere print_call_graph(std::FILE* out = stdout) { return {out}; }

/// One row of the task table.
struct TaskInfo {
  /// One of the things waiting for a task.
  struct Awaiter {
    std::uint64_t task_id = 0;  ///< 0 if nobody runs it (a gather nobody awaits)
    std::string name;           ///< the awaiting task's name
    std::string via;            ///< "" (awaits it directly), "gather", "TaskGroup", "wait"
  };
  std::uint64_t id = 0;  ///< The task's id (Task-N's N).
  std::string name;  ///< The task's name.
  std::string state;  ///< "running", "ready", "waiting", "pending" (not started) or "done".
  std::string created_at;  ///< "file.cpp:12": where the task was created.
  std::vector<FrameInfo> call_stack;  ///< innermost first
  std::string waiting_on;  ///< "sleep 1 s", "Task 'B' (id 3)", "gather", "lock", ...; "" when not waiting.
  std::vector<Awaiter> awaited_by;  ///< Who waits for it.
};

/// Every unfinished task of `loop`, oldest first.
std::vector<TaskInfo> inspect_tasks(EventLoop& loop);
/// A `ps`-like table: ID, NAME, STATE, COROUTINE (outermost > innermost, at file:line),
/// WAITING ON, AWAITED BY.
std::string format_tasks_table(EventLoop& loop);
/// A `pstree`-like tree: tasks nobody awaits at the top, each task above what it awaits
/// (through a gather, TaskGroup or wait node when there is one).
std::string format_tasks_tree(EventLoop& loop);

/// The tasks as one JSON document, for other tools (`asyncio-inspect ps --json PID` prints it):
///
///     {"tasks":[
///     {"id":2,"name":"worker","state":"waiting","created_at":"app.cpp:40","waiting_on":"sleep 1 s",
///      "call_stack":[{"function":"fetch","file":"/src/app.cpp","line":21}, ...],
///      "awaited_by":[{"id":1,"name":"main","via":"gather"}]}, ...
///     ]}
///
/// Fields as in TaskInfo (`via` is "" when the task is awaited directly). Strings are valid UTF-8
/// whatever the task names hold: invalid bytes become U+FFFD.
std::string format_tasks_json(const std::vector<TaskInfo>& tasks);
/// An await graph as JSON (`asyncio-inspect graph --json PID ID`): an object with `kind` ("task",
/// "gather", "task_group", "wait"); a task has `id`, `name`, `state`, `created_at`, `waiting_on`
/// and `call_stack` (innermost first), the others `children`; every node has `awaited_by`, an
/// array of nodes of the same shape.
std::string format_call_graph_json(const CallGraph& graph);

/// Lets `asyncio-inspect ps|pstree PID` dump this loop's tasks: serves a Unix socket at `path`
/// (default: inspection_socket_path(getpid())) from the loop, between steps. Returns the path.
/// One loop per process; RuntimeError if another loop has it. The socket goes when the loop is
/// destroyed or with disable_inspection(), and also at exit() and when SIGINT, SIGTERM or SIGHUP
/// kills the process: for each of those signals whose disposition is still the default, a
/// handler removes the socket, restores the default and raises the signal again; a program's
/// own handlers are never replaced (docs/overview.md, section 11.1).
///
/// Without code changes: `ASYNCIO_INSPECT=1` in the environment enables it on the first loop
/// made while no loop serves it (a value containing '/' is the socket's path).
std::string enable_inspection(EventLoop& loop, std::string path = {});
/// Stops serving and removes the socket. False if inspection was not enabled.
bool disable_inspection(EventLoop& loop);
/// Where a process serves inspection: $XDG_RUNTIME_DIR/asyncio-inspect-<pid>.sock if that
/// directory exists, else /tmp/asyncio-inspect-<pid>.sock.
std::string inspection_socket_path(long pid);
/// The paths asyncio-inspect tries for `pid`, in order.
std::vector<std::string> inspection_socket_candidates(long pid);

}  // namespace asyncio
#pragma GCC visibility pop
