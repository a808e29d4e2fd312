// SPDX-License-Identifier: MIT
// Await graphs, task tables and trees, and the inspection socket (inspect.hpp).
#include "asyncio/inspect.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "asyncio/log.hpp"
#include "diag/introspect.hpp"
#include "os/remove_at_exit.hpp"

namespace asyncio {

std::string FrameInfo::to_string() const {
  std::string text = function.empty() ? std::string("?") : function + "()";
  std::string at = detail::short_location(file.c_str(), line);
  if (!at.empty()) text += " at " + at;
  return text;
}

namespace detail {
namespace {

constexpr std::size_t kMaxFrames = 256;

std::vector<FrameInfo> frames_from(const CoroPromiseBase* p) {
  std::vector<FrameInfo> frames;
  for (; p && frames.size() < kMaxFrames; p = p->parent)
    frames.push_back(FrameInfo{short_function(p->where.function), p->where.file ? p->where.file : "", p->where.line});
  return frames;
}

std::vector<FrameInfo> frames_of(const TaskCore& t) {
  if (t.future()->done() || !Introspect::started(t)) return {};
  if (t.is_running()) {
    // Only the top coroutine is known while the task runs (its innermost one may be anywhere).
    const CoroPromiseBase* top = t.top_promise();
    if (!top) return {};
    FrameInfo f{short_function(top->where.function), top->where.file ? top->where.file : "", top->where.line};
    return {f};
  }
  return frames_from(Introspect::innermost(t));
}

std::string state_of(const TaskCore& t) {
  std::string s;
  if (t.future()->done())
    s = "done";
  else if (t.is_running())
    s = "running";
  else if (!Introspect::started(t))
    s = "pending";
  else if (Introspect::scheduled(t))
    s = "ready";
  else
    s = "waiting";
  if (!t.future()->done() && t.cancelling() > 0) s += " (cancelling)";
  return s;
}


/// Builds await graphs over one loop's tasks.
class GraphBuilder {
 public:
  explicit GraphBuilder(EventLoop& loop) {
    for (TaskLink* l = loop.first_task(); l; l = l->next_link) tasks_.push_back(static_cast<TaskCore*>(l));
    // The TaskGroups and wait()s in progress, found through the callbacks on their tasks: a task
    // parked on one of their internal futures is shown waiting for the group or the wait.
    for (TaskCore* t : tasks_)
      Introspect::for_each_callback(*t->future(), [&](Introspect::CallbackFn fn, void* arg) {
        if (fn == Introspect::task_group_callback()) {
          const auto* g = static_cast<const TaskGroup*>(arg);
          if (const FutureStateBase* f = Introspect::task_group_exit_future(*g))
            internal_[f] = "TaskGroup (" + std::to_string(Introspect::task_group_size(*g)) + " tasks)";
        } else if (fn == Introspect::wait_callback()) {
          auto* w = static_cast<MultiWait*>(arg);
          internal_[Introspect::wait_signal(*w)] = "wait (" + std::to_string(Introspect::wait_size(*w)) + " futures)";
        }
      });
  }

  std::string waiting_on(const TaskCore& t) const {
    if (t.future()->done() || t.is_running() || !Introspect::started(t)) return {};
    const Suspension* w = Introspect::waiter(t);
    if (!w) return {};
    if (const FutureStateBase* f = w->wait_target().future) {
      auto it = internal_.find(f);
      if (it != internal_.end()) return it->second;
    }
    return describe_wait(w);
  }

  CallGraph task_node(const TaskCore& t, std::size_t depth, const CoroPromiseBase* innermost = nullptr) {
    CallGraph g;
    g.kind = CallGraph::Kind::task;
    g.task_id = t.id();
    g.name = t.get_name();
    g.state = state_of(t);
    g.created_at = short_location(t.created_at().file, t.created_at().line);
    g.call_stack = innermost ? frames_from(innermost) : frames_of(t);
    g.waiting_on = waiting_on(t);
    add_awaiters(*t.future(), g.awaited_by, depth);
    return g;
  }

  /// Who waits for `f`: tasks parked on it, gathers, TaskGroups and wait()s registered on it.
  void add_awaiters(const FutureStateBase& f, std::vector<CallGraph>& out, std::size_t depth) {
    if (depth == 0 || on_path_.count(&f)) return;
    on_path_.insert(&f);
    for (TaskCore* t : tasks_) {
      if (t->is_running()) continue;
      const Suspension* w = Introspect::waiter(*t);
      if (w && w->wait_target().future == &f) out.push_back(task_node(*t, depth - 1));
    }
    Introspect::for_each_callback(f, [&](Introspect::CallbackFn fn, void* arg) {
      if (fn == &GatherBase::on_child_done) {
        CallGraph g;
        g.kind = CallGraph::Kind::gather;
        g.name = "gather";
        add_awaiters(static_cast<GatherBase*>(arg)->gather_future(), g.awaited_by, depth - 1);
        out.push_back(std::move(g));
      } else if (fn == Introspect::task_group_callback()) {
        const auto* group = static_cast<const TaskGroup*>(arg);
        CallGraph g;
        g.kind = CallGraph::Kind::task_group;
        g.name = "TaskGroup";
        g.children = Introspect::task_group_size(*group);
        const AnyTask& parent = Introspect::task_group_parent(*group);
        if (parent && !parent.done() && depth > 1 && !on_path_.count(parent.state()))
          g.awaited_by.push_back(task_node(*parent.core(), depth - 1));
        out.push_back(std::move(g));
      } else if (fn == Introspect::wait_callback()) {
        auto* w = static_cast<MultiWait*>(arg);
        CallGraph g;
        g.kind = CallGraph::Kind::wait;
        g.name = "wait";
        g.children = Introspect::wait_size(*w);
        add_awaiters(*Introspect::wait_signal(*w), g.awaited_by, depth - 1);
        out.push_back(std::move(g));
      }
    });
    on_path_.erase(&f);
  }

  const std::vector<TaskCore*>& tasks() const noexcept { return tasks_; }

 private:
  std::vector<TaskCore*> tasks_;
  std::map<const FutureStateBase*, std::string> internal_;  // TaskGroup / wait() futures
  std::set<const FutureStateBase*> on_path_;  // guards against await cycles
};

void render(const CallGraph& g, std::size_t indent, std::string& out) {
  std::string pad(indent, ' ');
  out += pad + "* ";
  switch (g.kind) {
    case CallGraph::Kind::task:
      out += "Task '" + g.name + "' (id " + std::to_string(g.task_id) + ") " + g.state;
      if (!g.waiting_on.empty()) out += ": " + g.waiting_on;
      if (g.state.rfind("pending", 0) == 0) out += " (created at " + g.created_at + ")";
      break;
    case CallGraph::Kind::gather:
      out += "gather";
      break;
    case CallGraph::Kind::task_group:
      out += "TaskGroup (" + std::to_string(g.children) + (g.children == 1 ? " task)" : " tasks)");
      break;
    case CallGraph::Kind::wait:
      out += "wait (" + std::to_string(g.children) + (g.children == 1 ? " future)" : " futures)");
      break;
  }
  out += "\n";
  if (!g.call_stack.empty()) {
    out += pad + "+ Call stack:\n";
    for (const FrameInfo& f : g.call_stack) out += pad + "|   " + f.to_string() + "\n";
  }
  if (!g.awaited_by.empty()) {
    out += pad + "+ Awaited by:\n";
    for (const CallGraph& a : g.awaited_by) render(a, indent + 3, out);
  }
}

/// The tasks that wait for a graph node's task, through at most one gather/TaskGroup/wait.
void collect_awaiters(const CallGraph& node, const std::string& via, std::vector<TaskInfo::Awaiter>& out) {
  for (const CallGraph& a : node.awaited_by) {
    if (a.kind == CallGraph::Kind::task) {
      out.push_back(TaskInfo::Awaiter{a.task_id, a.name, via});
    } else {
      std::size_t before = out.size();
      collect_awaiters(a, via.empty() ? a.name : via, out);
      if (out.size() == before) out.push_back(TaskInfo::Awaiter{0, {}, a.name});  // nobody awaits the gather
    }
  }
}

TaskInfo info_of(GraphBuilder& builder, const TaskCore& t) {
  CallGraph g = builder.task_node(t, 4);
  TaskInfo info;
  info.id = g.task_id;
  info.name = g.name;
  info.state = g.state;
  info.created_at = g.created_at;
  info.call_stack = std::move(g.call_stack);
  info.waiting_on = g.waiting_on;
  collect_awaiters(g, {}, info.awaited_by);
  return info;
}

std::string coroutine_chain(const TaskInfo& t) {
  // outermost > ... > innermost
  std::string s;
  for (auto it = t.call_stack.rbegin(); it != t.call_stack.rend(); ++it) {
    if (!s.empty()) s += " > ";
    s += it->function.empty() ? "?" : it->function;
  }
  return s;
}

std::string location_of(const TaskInfo& t) {
  if (t.call_stack.empty()) return t.state.rfind("pending", 0) == 0 ? "created at " + t.created_at : "";
  const FrameInfo& f = t.call_stack.front();
  return short_location(f.file.c_str(), f.line);
}

std::string awaiters_text(const TaskInfo& t) {
  std::string s;
  for (const auto& a : t.awaited_by) {
    if (!s.empty()) s += ", ";
    if (a.task_id)
      s += a.name + " (" + std::to_string(a.task_id) + ")";
    else
      s += "(nobody)";
    if (!a.via.empty()) s += " via " + a.via;
  }
  return s;
}

std::string clip(std::string s, std::size_t width) {
  if (s.size() > width) {
    s.resize(width - 3);
    s += "...";
  }
  return s;
}

}  // namespace

CallGraph capture_call_graph_from(CoroPromiseBase* innermost, std::size_t depth) {
  TaskCore* t = t_current_task;
  if (!t) throw RuntimeError("capture_call_graph(): no current task");
  GraphBuilder builder(*t->loop());
  return builder.task_node(*t, depth, innermost);
}

CallGraph CaptureCallGraphHere::await_resume() const {
  // Coro's await_transform has just recorded this co_await in the calling coroutine's promise.
  return capture_call_graph_from(t_last_await, depth);
}

void PrintCallGraphHere::await_resume() const {
  std::string text = format_call_graph(capture_call_graph_from(t_last_await, 16));
  std::fputs(text.c_str(), out);
  std::fflush(out);
}

}  // namespace detail

CallGraph capture_call_graph(const AnyTask& task, std::size_t depth) {
  if (!task) throw ValueError("capture_call_graph(): empty task handle");
  detail::GraphBuilder builder(task.get_loop());
  return builder.task_node(*task.core(), depth);
}

std::string format_call_graph(const CallGraph& graph) {
  std::string out;
  detail::render(graph, 0, out);
  return out;
}

void print_call_graph(const AnyTask& task, std::FILE* out) {
  std::string text = format_call_graph(capture_call_graph(task));
  std::fputs(text.c_str(), out);
  std::fflush(out);
}

std::vector<TaskInfo> inspect_tasks(EventLoop& loop) {
  detail::GraphBuilder builder(loop);
  std::vector<TaskInfo> out;
  // The loop links new tasks at the head: walk it backwards for oldest first.
  const auto& tasks = builder.tasks();
  for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) out.push_back(detail::info_of(builder, **it));
  return out;
}

std::string format_tasks_table(EventLoop& loop) {
  std::vector<TaskInfo> tasks = inspect_tasks(loop);
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "NAME", "STATE", "COROUTINE", "LOCATION", "WAITING ON", "AWAITED BY"});
  const std::size_t widths[] = {8, 24, 20, 48, 32, 32, 48};
  for (const TaskInfo& t : tasks)
    rows.push_back({std::to_string(t.id), t.name, t.state, detail::coroutine_chain(t), detail::location_of(t),
                    t.waiting_on, detail::awaiters_text(t)});
  std::vector<std::size_t> col(rows.front().size(), 0);
  for (auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      row[i] = detail::clip(row[i], widths[i]);
      col[i] = std::max(col[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(col[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += std::to_string(tasks.size()) + (tasks.size() == 1 ? " task\n" : " tasks\n");
  return out;
}

std::string format_tasks_tree(EventLoop& loop) {
  std::vector<TaskInfo> tasks = inspect_tasks(loop);
  std::unordered_map<std::uint64_t, const TaskInfo*> by_id;
  for (const TaskInfo& t : tasks) by_id.emplace(t.id, &t);

  // awaiter id -> (via, children in order)
  struct Group {
    std::string via;
    std::vector<std::uint64_t> children;
  };
  std::unordered_map<std::uint64_t, std::vector<Group>> children;
  std::set<std::uint64_t> awaited;
  for (const TaskInfo& t : tasks) {
    for (const auto& a : t.awaited_by) {
      if (!a.task_id || !by_id.count(a.task_id)) continue;
      awaited.insert(t.id);
      auto& groups = children[a.task_id];
      auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.via == a.via; });
      if (g == groups.end()) {
        groups.push_back(Group{a.via, {}});
        g = groups.end() - 1;
      }
      if (std::find(g->children.begin(), g->children.end(), t.id) == g->children.end()) g->children.push_back(t.id);
    }
  }

  auto label = [](const TaskInfo& t) {
    std::string s = "Task '" + t.name + "' (id " + std::to_string(t.id) + ") " + t.state;
    std::string chain = detail::coroutine_chain(t);
    if (!chain.empty()) s += "  " + chain + "()";
    std::string at = detail::location_of(t);
    if (!at.empty()) s += (chain.empty() ? "  " : " at ") + at;
    if (!t.waiting_on.empty()) s += "  [" + t.waiting_on + "]";
    return s;
  };

  std::string out;
  std::set<std::uint64_t> printed;
  std::vector<std::uint64_t> path;
  // prefix: what goes before this node's connector; last: whether it is its parent's last child.
  std::function<void(std::uint64_t, const std::string&, bool, bool)> node =
      [&](std::uint64_t id, const std::string& prefix, bool is_root, bool last) {
        const TaskInfo& t = *by_id.at(id);
        std::string connector = is_root ? "" : (last ? "└── " : "├── ");
        if (std::find(path.begin(), path.end(), id) != path.end()) {
          out += prefix + connector + "Task '" + t.name + "' (id " + std::to_string(id) + ")  (await cycle)\n";
          return;
        }
        out += prefix + connector + label(t) + "\n";
        printed.insert(id);
        path.push_back(id);
        std::string inner = is_root ? "" : prefix + (last ? "    " : "│   ");
        auto it = children.find(id);
        if (it != children.end()) {
          const auto& groups = it->second;
          for (std::size_t gi = 0; gi < groups.size(); ++gi) {
            const Group& g = groups[gi];
            bool g_last = gi + 1 == groups.size();
            if (g.via.empty()) {
              for (std::size_t ci = 0; ci < g.children.size(); ++ci)
                node(g.children[ci], inner, false, g_last && ci + 1 == g.children.size());
            } else {
              out += inner + (g_last ? "└── " : "├── ") + g.via + "\n";
              std::string gpad = inner + (g_last ? "    " : "│   ");
              for (std::size_t ci = 0; ci < g.children.size(); ++ci)
                node(g.children[ci], gpad, false, ci + 1 == g.children.size());
            }
          }
        }
        path.pop_back();
      };
  for (const TaskInfo& t : tasks)
    if (!awaited.count(t.id)) node(t.id, "", true, true);
  // Tasks only reachable through an await cycle.
  for (const TaskInfo& t : tasks)
    if (!printed.count(t.id)) node(t.id, "", true, true);
  return out;
}

// ---- the inspection socket -------------------------------------------------------------------------

std::string inspection_socket_path(long pid) {
  std::string name = "asyncio-inspect-" + std::to_string(pid) + ".sock";
  if (const char* dir = std::getenv("XDG_RUNTIME_DIR"); dir && *dir) {
    struct stat st{};
    std::string path = std::string(dir) + "/" + name;
    if (::stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && path.size() < sizeof(sockaddr_un::sun_path)) return path;
  }
  return "/tmp/" + name;
}

std::vector<std::string> inspection_socket_candidates(long pid) {
  std::vector<std::string> out{inspection_socket_path(pid)};
  std::string tmp = "/tmp/asyncio-inspect-" + std::to_string(pid) + ".sock";
  if (out.front() != tmp) out.push_back(tmp);
  return out;
}

namespace detail {

/// The loop that serves inspection in this process (one at most).
std::atomic<EventLoop*> g_inspected_loop{nullptr};

/// Serves `ps`, `pstree` and `graph ID` requests on a Unix socket, from the loop (add_reader):
/// every answer is a snapshot taken between two steps. One request per connection; the answer
/// is plain text, then the server closes the connection.
class InspectServer {
 public:
  InspectServer(EventLoop& loop, std::string path) : loop_(&loop), path_(std::move(path)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) throw ValueError("inspection socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "inspection socket");
    ::unlink(path_.c_str());  // a stale socket of an earlier process with the same pid
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path_.c_str(), 0600) != 0 ||
        ::listen(fd_, 16) != 0) {
      int err = errno;
      ::close(fd_);
      ::unlink(path_.c_str());
      throw std::system_error(err, std::generic_category(), "inspection socket " + path_);
    }
    loop.add_reader(fd_, [this] { accept_all(); });
    // A program that ends without destroying its loop (exit() from a task, Ctrl-C, kill) must not
    // leave the socket behind either.
    os::remove_at_exit(path_);
  }

  /// On the loop's thread, with the loop alive: stop watching, then close.
  void shutdown() {
    for (auto& [fd, c] : conns_) {
      loop_->remove_reader(fd);
      loop_->remove_writer(fd);
      c.timeout.cancel();
    }
    if (fd_ >= 0) loop_->remove_reader(fd_);
    close_all();
  }

  /// When the loop is being destroyed (it has dropped its watchers already): close only.
  ~InspectServer() { close_all(); }

  const std::string& path() const noexcept { return path_; }
  EventLoop* loop() const noexcept { return loop_; }

 private:
  struct Conn {
    std::string in, out;
    std::size_t sent = 0;
    TimerHandle timeout;
  };

  void close_all() noexcept {
    for (auto& [fd, c] : conns_) ::close(fd);
    conns_.clear();
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
      os::forget_at_exit();
      fd_ = -1;
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a client that went away
      Conn& c = conns_[fd];
      c.timeout = loop_->call_later(5.0, [this, fd] { drop(fd); });  // a client that never asks
      loop_->add_reader(fd, [this, fd] { on_readable(fd); });
    }
  }

  void on_readable(int fd) {
    Conn& c = conns_.at(fd);
    char buf[256];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        if (c.in.size() > 4096) return drop(fd);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return drop(fd);
      break;  // EOF: the request is complete
    }
    auto nl = c.in.find('\n');
    if (nl == std::string::npos) return;  // wait for the rest of the line
    std::string request = c.in.substr(0, nl);
    if (!request.empty() && request.back() == '\r') request.pop_back();
    loop_->remove_reader(fd);
    c.out = answer(request);
    on_writable(fd);
  }

  void on_writable(int fd) {
    Conn& c = conns_.at(fd);
    while (c.sent < c.out.size()) {
      ssize_t n = ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        loop_->add_writer(fd, [this, fd] { on_writable(fd); });
        return;
      }
      return drop(fd);
    }
    drop(fd);
  }

  void drop(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    loop_->remove_reader(fd);
    loop_->remove_writer(fd);
    it->second.timeout.cancel();
    ::close(fd);
    conns_.erase(it);
  }

  /// "ps", "pstree", "graph ID"; with " json" after it, the answer is JSON (ps and pstree give
  /// the same document: the tree is in each task's awaited_by).
  std::string answer(std::string request) {
    try {
      constexpr std::string_view kJson = " json";
      bool json = request.size() > kJson.size() && request.compare(request.size() - kJson.size(), kJson.size(), kJson) == 0;
      if (json) request.resize(request.size() - kJson.size());
      if (request == "ps" || request == "pstree") {
        if (json) return format_tasks_json(inspect_tasks(*loop_));
        return request == "ps" ? format_tasks_table(*loop_) : format_tasks_tree(*loop_);
      }
      if (request.rfind("graph ", 0) == 0) {
        std::uint64_t id = std::strtoull(request.c_str() + 6, nullptr, 10);
        for (TaskLink* l = loop_->first_task(); l; l = l->next_link) {
          auto* t = static_cast<TaskCore*>(l);
          if (t->id() != id) continue;
          CallGraph graph = capture_call_graph(AnyTask(t));
          return json ? format_call_graph_json(graph) : format_call_graph(graph);
        }
        return "error: no unfinished task with id " + std::to_string(id) + "\n";
      }
      return "error: unknown request '" + request + "' (ps, pstree, graph ID; json after any)\n";
    } catch (const std::exception& e) {
      return std::string("error: ") + e.what() + "\n";
    }
  }

  EventLoop* loop_;
  std::string path_;
  int fd_ = -1;
  std::map<int, Conn> conns_;
};

void LoopHooks::Deleter::operator()(InspectServer* p) const noexcept {
  if (!p) return;
  EventLoop* loop = p->loop();
  g_inspected_loop.compare_exchange_strong(loop, nullptr);
  delete p;
}

}  // namespace detail

std::string enable_inspection(EventLoop& loop, std::string path) {
  detail::LoopHooks& h = detail::Introspect::hooks(loop);
  if (h.server) return h.server->path();
  EventLoop* expected = nullptr;
  if (!detail::g_inspected_loop.compare_exchange_strong(expected, &loop) && expected != &loop)
    throw RuntimeError("inspection is already enabled on another event loop of this process");
  try {
    if (path.empty()) path = inspection_socket_path(static_cast<long>(::getpid()));
    h.server.reset(new detail::InspectServer(loop, path));
  } catch (...) {
    detail::g_inspected_loop.store(nullptr);
    throw;
  }
  return h.server->path();
}

bool disable_inspection(EventLoop& loop) {
  detail::LoopHooks* h = detail::Introspect::find_hooks(loop);
  if (!h || !h->server) return false;
  if (!loop.is_closed()) h->server->shutdown();
  h->server.reset();  // also frees the process's inspection slot
  return true;
}

}  // namespace asyncio
