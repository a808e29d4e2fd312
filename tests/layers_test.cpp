// SPDX-License-Identifier: MIT
// The library's layers, kept: every file under src/ sits in a layer folder, and its #include lines
// reach only its own layer and the layers below it. Only the OS layer includes the platform's
// kernel interfaces. The tables below are the rule; src/README.md draws it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

// ---- the rule ----------------------------------------------------------------------------------

/// Each layer, from the OS up, with the layers it may include besides itself. The diagnostics sit
/// beside core and api: the loop reaches them only through the observer they install.
const std::map<std::string, std::set<std::string>> kMayUse = {
    {"os", {}},
    {"core", {"os"}},
    {"api", {"os", "core"}},
    {"net", {"os", "core", "api"}},
    {"tls", {"os", "core", "api", "net"}},
    {"streams", {"os", "core", "api", "net", "tls"}},
    {"process", {"os", "core", "api", "net", "tls", "streams"}},
    {"diag", {"os", "core", "api"}},
};

/// The public headers (include/asyncio/...), by the layer that implements them.
const std::map<std::string, std::string> kPublicHeaderLayer = {
    {"poller.hpp", "os"},
    {"coro.hpp", "core"},
    {"errors.hpp", "core"},
    {"future.hpp", "core"},
    {"log.hpp", "core"},
    {"loop.hpp", "core"},
    {"outcome.hpp", "core"},
    {"source_location.hpp", "core"},
    {"version.hpp", "core"},
    {"task.hpp", "core"},
    {"detail/adaptive_mutex.hpp", "core"},
    {"detail/byte_buffer.hpp", "core"},
    {"detail/channel_ring.hpp", "api"},
    {"detail/duration.hpp", "core"},
    {"detail/future_state.hpp", "core"},
    {"detail/handle_state.hpp", "core"},
    {"detail/intrusive_fifo.hpp", "core"},
    {"detail/ref.hpp", "core"},
    {"detail/ring_queue.hpp", "core"},
    {"detail/runnable.hpp", "core"},
    {"detail/task_core.hpp", "core"},
    {"detail/timer_heap.hpp", "core"},
    {"detail/timer_queue.hpp", "core"},
    {"gather.hpp", "api"},
    {"channel.hpp", "api"},
    {"per_core.hpp", "api"},
    {"locks.hpp", "api"},
    {"queues.hpp", "api"},
    {"run.hpp", "api"},
    {"shield.hpp", "api"},
    {"sleep.hpp", "api"},
    {"task_group.hpp", "api"},
    {"threads.hpp", "api"},
    {"timeout.hpp", "api"},
    {"wait.hpp", "api"},
    {"detail/awaitables.hpp", "api"},
    {"detail/waiters.hpp", "api"},
    {"dns.hpp", "net"},
    {"protocols.hpp", "net"},
    {"socket.hpp", "net"},
    {"transports.hpp", "net"},
    {"pipes.hpp", "net"},
    {"ssl.hpp", "tls"},
    {"streams.hpp", "streams"},
    {"subprocess.hpp", "process"},
    {"inspect.hpp", "diag"},
    {"trace.hpp", "diag"},
    {"watchdog.hpp", "diag"},
};

/// Public headers CMake writes into the build tree (include/asyncio/<name>), from cmake/<name>.in.
const std::set<std::string> kGeneratedHeaders = {"version.hpp"};

/// The umbrella header is for programs; no layer may include it.
constexpr std::string_view kUmbrella = "asyncio.hpp";

/// Linux's kernel interfaces behind pollers, processes and signals: the OS layer's business. A
/// name ending in '/' stands for every header under it.
const std::vector<std::string> kPlatformHeaders = {
    "sys/epoll.h",   "sys/eventfd.h", "sys/signalfd.h", "sys/timerfd.h", "sys/inotify.h",
    "sys/sendfile.h", "sys/syscall.h", "sys/pidfd.h",   "sys/wait.h",    "sys/prctl.h",
    "signal.h",      "csignal",       "spawn.h",        "liburing.h",    "linux/",
    "sched.h",
};

// ---- the checker -------------------------------------------------------------------------------

struct Include {
  int line;
  bool angled;       // <...>
  std::string name;  // what is between the brackets or quotes
};

std::vector<Include> includes_of(const std::string& text) {
  std::vector<Include> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line[i] != '#') continue;
    i = line.find_first_not_of(" \t", i + 1);
    if (i == std::string::npos || line.compare(i, 7, "include") != 0) continue;
    i = line.find_first_of("<\"", i + 7);
    if (i == std::string::npos) continue;
    char close = line[i] == '<' ? '>' : '"';
    std::size_t end = line.find(close, i + 1);
    if (end == std::string::npos) continue;
    out.push_back({n, line[i] == '<', line.substr(i + 1, end - i - 1)});
  }
  return out;
}

bool is_platform_header(const std::string& name) {
  for (const std::string& p : kPlatformHeaders)
    if (p.back() == '/' ? name.rfind(p, 0) == 0 : name == p) return true;
  return false;
}

/// The layer a quoted include belongs to: public headers by the table, private ones by their
/// folder ("net/net_internal.hpp"), a bare name by the including file's own folder. Empty if
/// it is none of these.
std::string layer_of_include(const std::string& name, const std::string& own_layer) {
  if (name.rfind("asyncio/", 0) == 0) {
    auto it = kPublicHeaderLayer.find(name.substr(8));
    return it == kPublicHeaderLayer.end() ? std::string() : it->second;
  }
  std::size_t slash = name.find('/');
  if (slash == std::string::npos) return own_layer;
  std::string folder = name.substr(0, slash);
  return kMayUse.count(folder) ? folder : std::string();
}

/// Every way `text`, the file `path` (relative to src/) of layer `layer`, breaks the rule, as
/// "src/path:line: what".
std::vector<std::string> violations(const std::string& layer, const std::string& path, const std::string& text) {
  std::vector<std::string> out;
  auto report = [&](int line, const std::string& what) {
    out.push_back("src/" + path + ":" + std::to_string(line) + ": " + what);
  };
  auto rule = kMayUse.find(layer);
  if (rule == kMayUse.end()) {
    report(0, "not in a layer folder (" + layer + "/ is not one of tests/layers_test.cpp's layers)");
    return out;
  }
  for (const Include& inc : includes_of(text)) {
    if (inc.angled) {
      if (layer != "os" && is_platform_header(inc.name))
        report(inc.line, layer + " includes the platform header <" + inc.name + ">; only os may");
      continue;
    }
    if (inc.name == "asyncio/" + std::string(kUmbrella)) {
      report(inc.line, layer + " includes the umbrella header " + inc.name + ", which is for programs");
      continue;
    }
    std::string target = layer_of_include(inc.name, layer);
    if (target.empty()) {
      report(inc.line, "\"" + inc.name + "\" belongs to no layer (add public headers to tests/layers_test.cpp)");
    } else if (target != layer && !rule->second.count(target)) {
      report(inc.line, layer + " includes " + inc.name + ", of " + target + ", which is not below " + layer);
    }
  }
  return out;
}

// ---- the tree ----------------------------------------------------------------------------------

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path(); }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool is_source(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".cpp" || ext == ".hpp" || ext == ".h" || ext == ".cc";
}

struct SourceFile {
  std::string layer;  // its first folder under src/ ("" if it lies in src/ itself)
  std::string path;   // relative to src/
  fs::path full;
};

std::vector<SourceFile> source_files() {
  std::vector<SourceFile> out;
  fs::path src = source_root() / "src";
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file() || !is_source(entry.path())) continue;
    fs::path rel = fs::relative(entry.path(), src);
    std::string layer = rel.has_parent_path() ? rel.begin()->string() : std::string();
    out.push_back({layer, rel.generic_string(), entry.path()});
  }
  std::sort(out.begin(), out.end(), [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

// ---- the tests ---------------------------------------------------------------------------------

TEST(Layers, TheTreeHasSourcesInEveryLayer) {
  std::set<std::string> seen;
  for (const SourceFile& f : source_files()) seen.insert(f.layer);
  for (const auto& [layer, below] : kMayUse) EXPECT_TRUE(seen.count(layer)) << "src/" << layer << "/ holds no source";
}

TEST(Layers, EverySourceFileIsInALayerFolder) {
  std::vector<std::string> stray;
  for (const SourceFile& f : source_files())
    if (!kMayUse.count(f.layer)) stray.push_back("src/" + f.path);
  EXPECT_TRUE(stray.empty()) << "outside the layer folders:\n" << joined(stray);
}

TEST(Layers, EveryLayerFolderHasAReadme) {
  for (const auto& [layer, below] : kMayUse)
    EXPECT_TRUE(fs::exists(source_root() / "src" / layer / "README.md")) << "src/" << layer << "/README.md";
}

TEST(Layers, NoLayerIncludesALayerAboveIt) {
  std::vector<std::string> found;
  for (const SourceFile& f : source_files()) {
    if (!kMayUse.count(f.layer)) continue;
    for (std::string& v : violations(f.layer, f.path, read_file(f.full)))
      if (v.find("platform header") == std::string::npos) found.push_back(std::move(v));
  }
  EXPECT_TRUE(found.empty()) << joined(found);
}

TEST(Layers, OnlyTheOsLayerIncludesPlatformHeaders) {
  std::vector<std::string> found;
  for (const SourceFile& f : source_files()) {
    if (!kMayUse.count(f.layer)) continue;
    for (std::string& v : violations(f.layer, f.path, read_file(f.full)))
      if (v.find("platform header") != std::string::npos) found.push_back(std::move(v));
  }
  EXPECT_TRUE(found.empty()) << joined(found);
}

TEST(Layers, EveryPublicHeaderHasALayer) {
  fs::path inc = source_root() / "include" / "asyncio";
  std::set<std::string> on_disk;
  for (const auto& entry : fs::recursive_directory_iterator(inc))
    if (entry.is_regular_file() && entry.path().extension() == ".hpp")
      on_disk.insert(fs::relative(entry.path(), inc).generic_string());
  on_disk.erase(std::string(kUmbrella));
  for (const std::string& h : kGeneratedHeaders)
    if (fs::exists(source_root() / "cmake" / (h + ".in"))) on_disk.insert(h);
  for (const std::string& h : on_disk) EXPECT_TRUE(kPublicHeaderLayer.count(h)) << "asyncio/" << h << " has no layer";
  for (const auto& [h, layer] : kPublicHeaderLayer) EXPECT_TRUE(on_disk.count(h)) << "asyncio/" << h << " is gone";
}

// libasyncio.so exports what the public headers declare and nothing the sources alone declare
// (cmake/shared.cmake): each public header must open a default-visibility region and close it.
TEST(Layers, EveryPublicHeaderExportsWhatItDeclares) {
  fs::path inc = source_root() / "include" / "asyncio";
  std::vector<fs::path> headers;
  for (const auto& entry : fs::recursive_directory_iterator(inc))
    if (entry.is_regular_file() && entry.path().extension() == ".hpp") headers.push_back(entry.path());
  for (const std::string& h : kGeneratedHeaders) headers.push_back(source_root() / "cmake" / (h + ".in"));
  for (const fs::path& h : headers) {
    std::string text = read_file(h);
    std::size_t once = text.find("#pragma once\n");
    std::size_t push = text.find("#pragma GCC visibility push(default)");
    std::size_t pop = text.rfind("#pragma GCC visibility pop");
    EXPECT_TRUE(once != std::string::npos && push == once + 13) << h << ": no visibility push(default) after #pragma once";
    EXPECT_TRUE(pop != std::string::npos && text.find_first_not_of(" \n", text.find('\n', pop)) == std::string::npos)
        << h << ": no visibility pop at the end";
  }
}

// The checker itself, on made-up files: each kind of breach is reported with its file and line.

TEST(Layers, CheckerReportsAnUpwardIncludeWithFileAndLine) {
  std::string text = "#include \"asyncio/loop.hpp\"\n\n#include \"diag/introspect.hpp\"\n";
  auto v = violations("core", "core/loop.cpp", text);
  ASSERT_EQ(v.size(), 1u) << joined(v);
  EXPECT_EQ(v[0], "src/core/loop.cpp:3: core includes diag/introspect.hpp, of diag, which is not below core");
}

TEST(Layers, CheckerReportsAnUpwardPublicHeader) {
  auto v = violations("net", "net/x.cpp", "#include \"asyncio/streams.hpp\"\n");
  ASSERT_EQ(v.size(), 1u) << joined(v);
  EXPECT_NE(v[0].find("src/net/x.cpp:1: net includes asyncio/streams.hpp, of streams"), std::string::npos) << v[0];
}

TEST(Layers, CheckerReportsAPlatformHeaderAboveOs) {
  auto v = violations("core", "core/x.cpp", "#include <vector>\n#  include <sys/epoll.h>\n#include <linux/io_uring.h>\n");
  ASSERT_EQ(v.size(), 2u) << joined(v);
  EXPECT_EQ(v[0], "src/core/x.cpp:2: core includes the platform header <sys/epoll.h>; only os may");
  EXPECT_NE(v[1].find(":3:"), std::string::npos) << v[1];
  EXPECT_TRUE(violations("os", "os/x.cpp", "#include <sys/epoll.h>\n").empty());
}

TEST(Layers, CheckerAllowsOwnAndLowerLayers) {
  std::string text =
      "#include \"asyncio/loop.hpp\"\n#include \"asyncio/threads.hpp\"\n#include \"net/net_internal.hpp\"\n"
      "#include \"ssl_internal.hpp\"\n#include <sys/socket.h>\n";
  EXPECT_TRUE(violations("tls", "tls/x.cpp", text).empty()) << joined(violations("tls", "tls/x.cpp", text));
}

TEST(Layers, CheckerReportsUnknownHeadersAndTheUmbrella) {
  auto v = violations("api", "api/x.cpp", "#include \"asyncio/nothing.hpp\"\n#include \"asyncio/asyncio.hpp\"\n");
  ASSERT_EQ(v.size(), 2u) << joined(v);
  EXPECT_NE(v[0].find("belongs to no layer"), std::string::npos) << v[0];
  EXPECT_NE(v[1].find("umbrella"), std::string::npos) << v[1];
}

}  // namespace
