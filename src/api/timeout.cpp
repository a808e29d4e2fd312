// SPDX-License-Identifier: MIT
#include "asyncio/timeout.hpp"

namespace asyncio {

Timeout timeout(std::optional<double> delay) {
  detail::check_timeout(delay, "delay");
  std::optional<double> when;
  if (delay) when = get_running_loop().time() + *delay;
  return Timeout(when);
}

void Timeout::enter() {
  if (state_ != State::created) throw RuntimeError("Timeout has already been entered");
  task_ = current_task();
  if (!task_) throw RuntimeError("Timeout should be used inside a task");
  cancelling_ = task_.cancelling();
  state_ = State::entered;
  reschedule(when_);
}

void Timeout::reschedule(std::optional<double> when) {
  detail::check_timeout(when, "time");
  if (state_ != State::entered) {
    if (state_ == State::created) throw RuntimeError("Timeout has not been entered");
    throw RuntimeError("Cannot change state of an expiring or finished Timeout");
  }
  when_ = when;
  handler_.cancel();
  handler_ = Handle();
  if (!when) return;
  EventLoop& loop = task_.get_loop();
  if (*when <= loop.time())
    handler_ = loop.call_soon([this] { on_timeout(); });
  else
    handler_ = loop.call_at(*when, [this] { on_timeout(); });
}

void Timeout::on_timeout() {
  task_.cancel();
  state_ = State::expiring;
  handler_ = Handle();
}

std::exception_ptr Timeout::exit(std::exception_ptr error) {
  handler_.cancel();
  handler_ = Handle();
  if (state_ == State::expiring) {
    state_ = State::expired;
    // Only our own cancellation becomes a TimeoutError; one requested by someone else since we
    // entered still counts in cancelling() and stays a CancelledError.
    if (task_.uncancel() <= cancelling_ && is_cancelled_error(error))
      return std::make_exception_ptr(TimeoutError());
  } else if (state_ == State::entered) {
    state_ = State::exited;
  }
  return error;
}

}  // namespace asyncio
