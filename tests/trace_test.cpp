// SPDX-License-Identifier: MIT
// Timeline traces (trace.hpp): the file parses as JSON and has the expected slices, including for
// the seed's two programs run with ASYNCIO_TRACE.
#include <asyncio/asyncio.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "inspect_support.hpp"

using asyncio::Coro;
using inspect_support::Slice;

namespace {

Coro<void> napper(double s) { co_await asyncio::sleep(s); }
Coro<void> awaiter(asyncio::Task<void> t) { co_await t; }
Coro<void> locker(asyncio::Lock& lock, double hold) {
  co_await lock.acquire();
  co_await asyncio::sleep(hold);
  lock.release();
}

Coro<void> trace_main() {
  auto a = asyncio::create_task(napper(0.02), "A");
  auto b = asyncio::create_task(awaiter(a), "B");
  co_await asyncio::gather(a, b);
}

Coro<void> lock_main(asyncio::Lock* lock) {
  auto holder = asyncio::create_task(locker(*lock, 0.02), "holder");
  co_await asyncio::sleep(0);
  auto waiter = asyncio::create_task(locker(*lock, 0), "waiter");
  co_await holder;
  co_await waiter;
}

Coro<void> two_waits(asyncio::Future<void> a, asyncio::Future<void> b) {
  co_await a;
  co_await b;
}

Coro<void> batch_of(int n) {
  std::vector<asyncio::Task<void>> batch;
  for (int k = 0; k < n; ++k) batch.push_back(asyncio::create_task(napper(0)));
  co_await asyncio::gather(std::move(batch));
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "-" + std::to_string(::getpid()) + ".json";
}

std::vector<Slice> on_track(const std::vector<Slice>& all, const std::string& track_part, const std::string& name = {},
                            char ph = 'X') {
  std::vector<Slice> out;
  for (const Slice& s : all)
    if (s.track.find(track_part) != std::string::npos && (name.empty() || s.name == name) && s.ph == ph)
      out.push_back(s);
  return out;
}

bool has_track(const std::vector<Slice>& all, const std::string& track_part) {
  return !on_track(all, track_part).empty();
}

}  // namespace

TEST(trace, FileIsJsonWithStepsWaitsAndIterations) {
  std::string path = temp_path("trace-basic");
  auto loop = asyncio::new_event_loop();
  asyncio::start_trace(*loop, path);
  EXPECT_TRUE(asyncio::is_tracing(*loop));
  loop->run_until_complete(loop->create_task(trace_main(), "main"));
  EXPECT_TRUE(asyncio::stop_trace(*loop));
  EXPECT_FALSE(asyncio::is_tracing(*loop));
  loop->close();

  inspect_support::Json doc;
  std::vector<Slice> all = inspect_support::read_trace(path, &doc);
  ASSERT_TRUE(doc.has("traceEvents"));
  EXPECT_EQ(doc["otherData"]["steps_dropped"].num, 0);

  // A: runs, sleeps 20 ms, runs again and finishes.
  auto a_runs = on_track(all, "'A'", "run");
  ASSERT_EQ(a_runs.size(), 2u);
  auto a_sleep = on_track(all, "'A'", "sleep 0.02 s");
  ASSERT_EQ(a_sleep.size(), 1u);
  EXPECT_EQ(a_sleep[0].kind, "sleep");
  EXPECT_GE(a_sleep[0].dur, 0.015);
  EXPECT_NEAR(a_sleep[0].start, a_runs[0].start + a_runs[0].dur, 1e-3);
  EXPECT_EQ(on_track(all, "'A'", "done", 'i').size(), 1u);
  EXPECT_NE(on_track(all, "'A'").front().track.find("napper()"), std::string::npos) << on_track(all, "'A'").front().track;

  // B waits for A; main waits for the gather.
  auto b_wait = on_track(all, "'B'", "await A");
  ASSERT_EQ(b_wait.size(), 1u);
  EXPECT_EQ(b_wait[0].kind, "task");
  auto m_wait = on_track(all, "'main'", "await gather");
  ASSERT_EQ(m_wait.size(), 1u);
  EXPECT_EQ(m_wait[0].kind, "gather");

  // The loop's track: iterations, the tasks' steps inside them, and a poll while all sleep.
  EXPECT_GE(on_track(all, "event loop", "iteration").size(), 3u);
  EXPECT_GE(on_track(all, "event loop", "poll").size(), 1u);
  EXPECT_EQ(on_track(all, "event loop", "A").size(), 2u);
  for (const Slice& s : all) EXPECT_GE(s.dur, 0.0) << s.name;
}

TEST(trace, TaskNamesThatAreNotUtf8StillGiveValidJson) {
  std::string path = temp_path("trace-utf8");
  auto loop = asyncio::new_event_loop();
  asyncio::start_trace(*loop, path);
  loop->run_until_complete(loop->create_task(napper(0), "bad\xff\xc3 caf\xc3\xa9"));
  asyncio::stop_trace(*loop);
  loop->close();
  std::string text = inspect_support::read_file(path);
  EXPECT_TRUE(inspect_support::valid_utf8(text));
  std::vector<Slice> all = inspect_support::read_trace(path);  // throws if not JSON
  EXPECT_TRUE(has_track(all, "'bad?? caf\xc3\xa9'"));        // the reader shows U+FFFD as '?'
}

TEST(trace, LockWaitIsNamed) {
  std::string path = temp_path("trace-lock");
  auto loop = asyncio::new_event_loop();
  asyncio::start_trace(*loop, path);
  asyncio::Lock lock;
  loop->run_until_complete(loop->create_task(lock_main(&lock), "main"));
  asyncio::stop_trace(*loop);
  loop->close();
  std::vector<Slice> all = inspect_support::read_trace(path);
  auto waits = on_track(all, "'waiter'");
  auto it = std::find_if(waits.begin(), waits.end(), [](const Slice& s) { return s.cat == "wait"; });
  ASSERT_NE(it, waits.end());
  EXPECT_EQ(it->kind, "lock") << it->name;
}

TEST(trace, EnvironmentVariableTracesEveryLoop) {
  std::string path = temp_path("trace-env");
  std::string second = path.substr(0, path.size() - 5) + ".2.json";
  ::unlink(path.c_str());
  ::unlink(second.c_str());
  ::setenv("ASYNCIO_TRACE", path.c_str(), 1);
  {
    auto loop = asyncio::new_event_loop();
    EXPECT_TRUE(asyncio::is_tracing(*loop));
    loop->run_until_complete(loop->create_task(napper(0.001), "first"));
  }  // the trace is written when the loop goes
  {
    auto loop = asyncio::new_event_loop();
    loop->run_until_complete(loop->create_task(napper(0.001), "second"));
  }
  ::unsetenv("ASYNCIO_TRACE");
  EXPECT_TRUE(has_track(inspect_support::read_trace(path), "'first'"));
  EXPECT_TRUE(has_track(inspect_support::read_trace(second), "'second'"));
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(asyncio::is_tracing(*loop));
}

TEST(trace, FullTraceSaysHowManyStepsItDropped) {
  std::string path = temp_path("trace-full");
  auto loop = asyncio::new_event_loop();
  asyncio::start_trace(*loop, path, asyncio::TraceOptions{.max_records = 3});
  loop->run_until_complete(loop->create_task(trace_main(), "main"));
  asyncio::stop_trace(*loop);
  inspect_support::Json doc;
  std::vector<Slice> all = inspect_support::read_trace(path, &doc);
  EXPECT_GT(doc["otherData"]["steps_dropped"].num, 0);
  bool said = false;
  for (const Slice& s : all) said = said || s.name.find("trace full") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(trace, Errors) {
  auto loop = asyncio::new_event_loop();
  EXPECT_FALSE(asyncio::stop_trace(*loop));
  asyncio::start_trace(*loop, "/nonexistent-dir/x.json");
  EXPECT_THROW(asyncio::start_trace(*loop, "/tmp/y.json"), asyncio::RuntimeError);
  EXPECT_THROW(asyncio::stop_trace(*loop), asyncio::RuntimeError);
  EXPECT_FALSE(asyncio::is_tracing(*loop));
}

// ---- the seed's two programs, as shipped in examples/ -----------------------------------------------

namespace {
std::vector<Slice> trace_example(const std::string& name) {
  std::string exe = inspect_support::build_dir() + "/examples/" + name;
  if (!inspect_support::executable(exe)) return {};
  std::string path = temp_path(name);
  std::string out;
  int rc = inspect_support::run_command("ASYNCIO_TRACE=" + path + " " + exe, out);
  EXPECT_EQ(rc, 0) << out;
  return inspect_support::read_trace(path);
}
}  // namespace

TEST(trace, SeedBlockingSleepIsAStaircase) {
  std::vector<Slice> all = trace_example("seed_blocking_sleep");
  if (all.empty()) GTEST_SKIP() << "examples/seed_blocking_sleep is not built";
  auto a = on_track(all, "Task-1", "run");
  auto b = on_track(all, "Task-2", "run");
  auto w = on_track(all, "Task-3", "run");
  // Each task runs to its end in one step that holds the loop: 2 s, then 3 s, then wait() at once.
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NEAR(a[0].dur, 2.0, 0.3);
  EXPECT_NEAR(b[0].dur, 3.0, 0.3);
  EXPECT_GE(b[0].start, a[0].start + a[0].dur - 1e-3);
  EXPECT_GE(w[0].start, b[0].start + b[0].dur - 1e-3);
  EXPECT_LT(w[0].dur, 0.05);
  // No task ever waits, and the loop never polls: one iteration holds everything.
  for (const Slice& s : all) EXPECT_NE(s.cat, "wait") << s.track << " " << s.name;
  EXPECT_TRUE(on_track(all, "event loop", "poll").empty());
  auto it = on_track(all, "event loop", "iteration");
  ASSERT_EQ(it.size(), 1u);
  EXPECT_NEAR(it[0].dur, 5.0, 0.4);
}

TEST(trace, SeedAsyncSleepInterleaves) {
  std::vector<Slice> all = trace_example("seed_async_sleep");
  if (all.empty()) GTEST_SKIP() << "examples/seed_async_sleep is not built";
  auto a_runs = on_track(all, "Task-1", "run");
  auto b_runs = on_track(all, "Task-2", "run");
  auto a_sleeps = on_track(all, "Task-1", "sleep 1 s");
  auto b_sleeps = on_track(all, "Task-2", "sleep 1 s");
  ASSERT_EQ(a_runs.size(), 3u);  // factorial(3): two sleeps
  ASSERT_EQ(b_runs.size(), 4u);  // factorial(4): three sleeps
  ASSERT_EQ(a_sleeps.size(), 2u);
  ASSERT_EQ(b_sleeps.size(), 3u);
  for (const Slice& s : a_runs) EXPECT_LT(s.dur, 0.05);
  for (const Slice& s : b_runs) EXPECT_LT(s.dur, 0.05);
  for (const Slice& s : a_sleeps) EXPECT_NEAR(s.dur, 1.0, 0.1);
  for (const Slice& s : b_sleeps) EXPECT_NEAR(s.dur, 1.0, 0.1);
  // Interleaved: B's first step runs while A is asleep, not after A has finished.
  EXPECT_LT(b_runs[0].start, a_sleeps[0].start + a_sleeps[0].dur);
  EXPECT_LT(b_runs[1].start, a_runs[2].start);
  // wait() (Task-3) waits about 3 s; the loop polls while everyone sleeps.
  auto w = on_track(all, "Task-3", "await future");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NEAR(w[0].dur, 3.0, 0.2);
  auto polls = on_track(all, "event loop", "poll");
  ASSERT_GE(polls.size(), 3u);
  double polled = 0;
  for (const Slice& p : polls) polled += p.dur;
  EXPECT_NEAR(polled, 3.0, 0.2);
}

TEST(trace, RingKeepsTheLastSteps) {
  std::string path = temp_path("trace-ring");
  auto loop = asyncio::new_event_loop();
  // A ring rounds up to whole 2 MiB chunks of 64-byte records: 32768 steps here.
  asyncio::start_trace(*loop, path, asyncio::TraceOptions{.max_records = 1000, .ring = true});
  auto first = loop->create_future<void>();
  auto second = loop->create_future<void>();
  auto resident = loop->create_task(two_waits(first, second), "resident");  // lives throughout
  loop->run_until_complete(loop->create_task(napper(0), "early"));
  for (int i = 0; i < 40; ++i) loop->run_until_complete(loop->create_task(batch_of(1000)));
  first.set_result();  // the resident runs a step inside the window, and parks again
  loop->run_until_complete(loop->create_task(napper(0), "late"));
  asyncio::stop_trace(*loop);
  second.set_result();
  loop->run_until_complete(resident);
  inspect_support::Json doc;
  std::vector<Slice> all = inspect_support::read_trace(path, &doc);
  EXPECT_TRUE(doc["otherData"]["ring"].b);
  EXPECT_GT(doc["otherData"]["steps_overwritten"].num, 0);
  EXPECT_EQ(doc["otherData"]["steps_dropped"].num, 0);
  EXPECT_FALSE(has_track(all, "'early'"));
  EXPECT_TRUE(has_track(all, "'late'"));
  EXPECT_TRUE(has_track(all, "'resident': two_waits()"));  // described by the loop at the end
}
