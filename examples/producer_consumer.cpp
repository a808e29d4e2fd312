// SPDX-License-Identifier: MIT
// Producer/consumer with a bounded Queue and join() (Python docs, "Queues" example, adapted).
//
//   async def worker(name, queue):
//       while True:
//           job = await queue.get()
//           await asyncio.sleep(job.cost)
//           queue.task_done()
//
//   async def main():
//       queue = asyncio.Queue(maxsize=4)            # the producer waits when 4 jobs are pending
//       workers = [asyncio.create_task(worker(f'worker-{i}', queue)) for i in range(3)]
//       for n in range(12):
//           await queue.put(Job(n, cost=...))
//       await queue.join()                          # every job got its task_done()
//       for w in workers: w.cancel()
//       await asyncio.gather(*workers, return_exceptions=True)
//
// The bound is the back-pressure: a fast producer is held back to the consumers' pace instead of
// piling work up in memory. Jobs are move-only here (a unique_ptr payload), which the queue allows.
#include <asyncio/asyncio.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

struct Job {
  int id;
  double cost;                          // seconds of (simulated) work
  std::unique_ptr<std::string> payload;  // move-only on purpose
};

asyncio::Coro<void> worker(std::string name, asyncio::Queue<Job>& queue, int& done) {
  for (;;) {
    Job job = co_await queue.get();
    co_await asyncio::sleep(job.cost);  // the work: another job proceeds meanwhile
    std::printf("%-8s finished job %2d (%s) after %.2fs\n", name.c_str(), job.id, job.payload->c_str(), job.cost);
    ++done;
    queue.task_done();
  }
}

asyncio::Coro<void> main_coro() {
  auto& loop = asyncio::get_running_loop();
  asyncio::Queue<Job> queue(4);
  int done = 0;
  std::vector<asyncio::Task<void>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(asyncio::create_task(worker("worker-" + std::to_string(i), queue, done)));

  double start = loop.time();
  for (int n = 0; n < 12; ++n) {
    Job job{n, 0.05 + 0.05 * (n % 3), std::make_unique<std::string>("payload " + std::to_string(n))};
    co_await queue.put(std::move(job));  // waits while 4 jobs are queued
    std::printf("producer queued job %2d at %.2fs (qsize %zu)\n", n, loop.time() - start, queue.qsize());
  }
  co_await queue.join();
  std::printf("all %d jobs done in %.2fs with 3 workers\n", done, loop.time() - start);

  for (auto& w : workers) w.cancel();
  co_await asyncio::gather(asyncio::return_exceptions, std::move(workers));
}

int main() { asyncio::run(main_coro()); }
