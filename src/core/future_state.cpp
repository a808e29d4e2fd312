// SPDX-License-Identifier: MIT
#include "asyncio/detail/future_state.hpp"

#include "asyncio/log.hpp"
#include "asyncio/detail/ref.hpp"
#include "asyncio/loop.hpp"

namespace asyncio::detail {

namespace {
thread_local std::uint64_t t_next_callback_id = 1;

using UserCallback = std::function<void(FutureStateBase&)>;

// The scheduled call holds its own reference to the future, so the future outlives the call.
// The stored callback holds none: a future that never completes is not kept alive by a cycle.
void fire_user_callback(void* arg, FutureStateBase& future) {
  std::unique_ptr<UserCallback> fn(static_cast<UserCallback*>(arg));
  future.add_ref();
  Ref<FutureStateBase> ref = Ref<FutureStateBase>::adopt(&future);
  future.loop()->call_soon([fn = std::move(*fn), ref = std::move(ref)] { fn(*ref); });
}
void drop_user_callback(void* arg) noexcept { delete static_cast<UserCallback*>(arg); }
}  // namespace

FutureStateBase::~FutureStateBase() {
  if (log_exception_) report_unretrieved("Future exception was never retrieved", {}, {});
  if (extras_)
    for (auto& cb : extras_->more)
      if (cb.drop) cb.drop(cb.arg);
}

FutureStateBase::Extras& FutureStateBase::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

void FutureStateBase::set_name(std::string name) {
  Extras& e = extras();
  e.name = std::move(name);
  e.has_name = true;
}

void FutureStateBase::report_unretrieved(const char* what, const std::string& name,
                                         const std::string& location) noexcept {
  log_exception_ = false;
  ExceptionContext ctx{what, exception_, name, location};
  if (EventLoop::is_alive(loop_)) {
    loop_->call_exception_handler(ctx);
    return;
  }
  try {
    log(LogLevel::error, std::string(what) + (name.empty() ? "" : "\ntask: " + name) +
                             "\nexception: " + describe_exception(exception_));
  } catch (...) {
  }
}

bool FutureStateBase::cancel(const std::string& msg) {
  if (done()) return false;
  mark_cancelled(msg);
  return true;
}

void FutureStateBase::mark_cancelled(const std::string& msg) {
  log_exception_ = false;
  set_cancel_message(msg);
  finish(Status::cancelled);
}

void FutureStateBase::set_exception(std::exception_ptr e) {
  if (done()) throw InvalidStateError("invalid state: the future is already done");
  if (!e) throw ValueError("set_exception needs an exception");
  exception_ = std::move(e);
  log_exception_ = true;
  finish(Status::finished);
}

std::exception_ptr FutureStateBase::exception() {
  if (status_ == Status::cancelled) throw CancelledError(cancel_message());
  if (status_ == Status::pending) throw InvalidStateError("Exception is not set.");
  log_exception_ = false;
  return exception_;
}

void FutureStateBase::check_result(const char* pending_message) {
  if (status_ == Status::cancelled) throw CancelledError(cancel_message());
  if (status_ == Status::pending) throw InvalidStateError(pending_message);
  if (exception_) {
    log_exception_ = false;
    std::rethrow_exception(exception_);
  }
}

const std::string& FutureStateBase::cancel_message() const noexcept {
  static const std::string empty;
  return extras_ ? extras_->cancel_message : empty;
}

void FutureStateBase::set_cancel_message(const std::string& msg) {
  if (msg.empty() && !extras_) return;
  extras().cancel_message = msg;
}

void FutureStateBase::add_callback(DoneCallback cb) {
  // The inline slot takes plain callbacks only, and only while it keeps registration order.
  bool plain = cb.drop == nullptr && cb.id == 0;
  if (plain && !first_fn_ && (!extras_ || extras_->more.empty())) {
    first_fn_ = cb.fn;
    first_arg_ = cb.arg;
    return;
  }
  extras().more.push_back(cb);
}

std::size_t FutureStateBase::remove_callback(void (*fn)(void*, FutureStateBase&), void* arg) noexcept {
  std::size_t removed = 0;
  if (first_fn_ == fn && first_arg_ == arg) {
    first_fn_ = nullptr;
    first_arg_ = nullptr;
    ++removed;
  }
  if (!extras_) return removed;
  auto& more = extras_->more;
  for (auto it = more.begin(); it != more.end();) {
    if (it->fn == fn && it->arg == arg) {
      if (it->drop) it->drop(it->arg);
      it = more.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

std::size_t FutureStateBase::remove_callback_id(std::uint64_t id) noexcept {
  if (id == 0 || !extras_) return 0;
  for (auto& cb : extras_->more)
    if (cb.id == id) return remove_callback(cb.fn, cb.arg);
  return 0;
}

std::uint64_t FutureStateBase::add_user_callback(std::function<void(FutureStateBase&)> fn) {
  std::uint64_t id = t_next_callback_id++;
  if (done()) {
    add_ref();
    loop_->call_soon([fn = std::move(fn), ref = Ref<FutureStateBase>::adopt(this)] { fn(*ref); });
    return id;
  }
  auto* holder = new UserCallback(std::move(fn));
  try {
    add_callback(DoneCallback{fire_user_callback, holder, drop_user_callback, id});
  } catch (...) {
    delete holder;
    throw;
  }
  return id;
}

void FutureStateBase::finish(Status status) {
  status_ = status;
  fire_callbacks();
}

void FutureStateBase::fire_callbacks() noexcept {
  bool any_more = extras_ && !extras_->more.empty();
  if (!first_fn_ && !any_more) return;
  add_ref();  // a callback may drop the last outside reference
  DoneCallback first{first_fn_, first_arg_};
  first_fn_ = nullptr;
  first_arg_ = nullptr;
  std::vector<DoneCallback> more;
  if (any_more) more.swap(extras_->more);
  auto fire = [&](DoneCallback& cb) {
    try {
      cb.fn(cb.arg, *this);
    } catch (...) {  // a fired callback owns its argument, even when it throws
      loop_->call_exception_handler({"Exception in future done callback", std::current_exception(), describe(), {}});
    }
  };
  if (first.fn) fire(first);
  for (auto& cb : more) fire(cb);
  release();
}

}  // namespace asyncio::detail
