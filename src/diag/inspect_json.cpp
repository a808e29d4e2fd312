// SPDX-License-Identifier: MIT
// The task dumps and await graphs as JSON (inspect.hpp; `asyncio-inspect --json`).
#include <string>

#include "asyncio/inspect.hpp"
#include "diag/json.hpp"

namespace asyncio {
namespace {

using detail::json_quoted;

void append_frames(std::string& out, const std::vector<FrameInfo>& frames) {
  out += "[";
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const FrameInfo& f = frames[i];
    if (i) out += ",";
    out += "{\"function\":" + json_quoted(f.function) + ",\"file\":" + json_quoted(f.file) +
           ",\"line\":" + std::to_string(f.line) + "}";
  }
  out += "]";
}

const char* kind_name(CallGraph::Kind kind) {
  switch (kind) {
    case CallGraph::Kind::task: return "task";
    case CallGraph::Kind::gather: return "gather";
    case CallGraph::Kind::task_group: return "task_group";
    case CallGraph::Kind::wait: return "wait";
  }
  return "task";
}

void append_graph(std::string& out, const CallGraph& g) {
  out += "{\"kind\":\"";
  out += kind_name(g.kind);
  out += "\"";
  if (g.kind == CallGraph::Kind::task) {
    out += ",\"id\":" + std::to_string(g.task_id) + ",\"name\":" + json_quoted(g.name) +
           ",\"state\":" + json_quoted(g.state) + ",\"created_at\":" + json_quoted(g.created_at) +
           ",\"waiting_on\":" + json_quoted(g.waiting_on) + ",\"call_stack\":";
    append_frames(out, g.call_stack);
  } else {
    out += ",\"children\":" + std::to_string(g.children);
  }
  out += ",\"awaited_by\":[";
  for (std::size_t i = 0; i < g.awaited_by.size(); ++i) {
    if (i) out += ",";
    append_graph(out, g.awaited_by[i]);
  }
  out += "]}";
}

}  // namespace

std::string format_tasks_json(const std::vector<TaskInfo>& tasks) {
  std::string out = "{\"tasks\":[";
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const TaskInfo& t = tasks[i];
    if (i) out += ",";
    out += "\n{\"id\":" + std::to_string(t.id) + ",\"name\":" + json_quoted(t.name) +
           ",\"state\":" + json_quoted(t.state) + ",\"created_at\":" + json_quoted(t.created_at) +
           ",\"waiting_on\":" + json_quoted(t.waiting_on) + ",\"call_stack\":";
    append_frames(out, t.call_stack);
    out += ",\"awaited_by\":[";
    for (std::size_t k = 0; k < t.awaited_by.size(); ++k) {
      const TaskInfo::Awaiter& a = t.awaited_by[k];
      if (k) out += ",";
      out += "{\"id\":" + std::to_string(a.task_id) + ",\"name\":" + json_quoted(a.name) +
             ",\"via\":" + json_quoted(a.via) + "}";
    }
    out += "]}";
  }
  out += "\n]}\n";
  return out;
}

std::string format_call_graph_json(const CallGraph& graph) {
  std::string out;
  append_graph(out, graph);
  out += "\n";
  return out;
}

}  // namespace asyncio
