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
  if (has_first_ && first_.drop) first_.drop(first_.arg);
  for (auto& cb : more_)
    if (cb.drop) cb.drop(cb.arg);
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
  return cancel_message_ ? *cancel_message_ : empty;
}

void FutureStateBase::set_cancel_message(const std::string& msg) {
  if (msg.empty() && !cancel_message_) return;
  cancel_message_ = std::make_unique<std::string>(msg);
}

void FutureStateBase::add_callback(DoneCallback cb) {
  if (!has_first_) {
    first_ = cb;
    has_first_ = true;
  } else {
    more_.push_back(cb);
  }
}

std::size_t FutureStateBase::remove_callback(void (*fn)(void*, FutureStateBase&), void* arg) noexcept {
  std::size_t removed = 0;
  auto matches = [&](const DoneCallback& cb) { return cb.fn == fn && cb.arg == arg; };
  if (has_first_ && matches(first_)) {
    if (first_.drop) first_.drop(first_.arg);
    has_first_ = false;
    ++removed;
  }
  for (auto it = more_.begin(); it != more_.end();) {
    if (matches(*it)) {
      if (it->drop) it->drop(it->arg);
      it = more_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

std::size_t FutureStateBase::remove_callback_id(std::uint64_t id) noexcept {
  if (id == 0) return 0;
  if (has_first_ && first_.id == id) return remove_callback(first_.fn, first_.arg);
  for (auto& cb : more_)
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
  if (!has_first_) return;
  add_ref();  // a callback may drop the last outside reference
  DoneCallback first = first_;
  has_first_ = false;
  std::vector<DoneCallback> more;
  more.swap(more_);
  auto fire = [&](DoneCallback& cb) {
    try {
      cb.fn(cb.arg, *this);
    } catch (...) {  // a fired callback owns its argument, even when it throws
      loop_->call_exception_handler({"Exception in future done callback", std::current_exception(), describe(), {}});
    }
  };
  fire(first);
  for (auto& cb : more) fire(cb);
  release();
}

}  // namespace asyncio::detail
