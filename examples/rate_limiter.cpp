// SPDX-License-Identifier: MIT
// A rate limiter with a Semaphore: at most 3 requests in flight, and at most 5 started per second.
//
//   sem = asyncio.Semaphore(3)
//   async def fetch(i):
//       async with sem:                  # at most 3 inside at once
//           await asyncio.sleep(0.3)     # the "request"
//
// The concurrency limit is the plain `async with sem:`. The rate limit is a second semaphore whose
// units come back one second after they were taken (a token bucket: 5 tokens, each refilled
// 1 s after use), so bursts are smoothed to the rate. Waiters are served first come, first
// served: no request starves.
#include <asyncio/asyncio.hpp>

#include <cstdio>
#include <vector>

class RateLimiter {
 public:
  /// At most `per_second` acquisitions in any one-second window, and `concurrent` at once.
  RateLimiter(int per_second, int concurrent) : tokens_(per_second), slots_(concurrent) {}

  /// Waits for a token and a slot; the guard returns the slot (the token comes back by itself).
  asyncio::Coro<asyncio::LockGuard<asyncio::Semaphore>> enter() {
    co_await tokens_.acquire();
    // Give the token back later, whatever happens to the caller.
    asyncio::get_running_loop().call_later(1.0, [this] { tokens_.release(); });
    co_return co_await slots_.scoped();
  }

 private:
  asyncio::Semaphore tokens_;
  asyncio::Semaphore slots_;
};

asyncio::Coro<void> request(RateLimiter& limiter, int i, double start, int& in_flight, int& peak) {
  auto slot = co_await limiter.enter();
  auto& loop = asyncio::get_running_loop();
  ++in_flight;
  if (in_flight > peak) peak = in_flight;
  std::printf("t=%.2fs request %2d starts (%d in flight)\n", loop.time() - start, i, in_flight);
  co_await asyncio::sleep(0.3);
  --in_flight;
}

asyncio::Coro<void> main_coro() {
  RateLimiter limiter(5, 3);
  double start = asyncio::get_running_loop().time();
  int in_flight = 0, peak = 0;
  std::vector<asyncio::Task<void>> requests;
  for (int i = 0; i < 12; ++i) requests.push_back(asyncio::create_task(request(limiter, i, start, in_flight, peak)));
  co_await asyncio::gather(std::move(requests));
  std::printf("12 requests in %.2fs, at most %d at once, at most 5 started per second\n",
              asyncio::get_running_loop().time() - start, peak);
}

int main() { asyncio::run(main_coro()); }
