// SPDX-License-Identifier: MIT
#include "asyncio/task_group.hpp"

#include <algorithm>

namespace asyncio {

TaskGroup::TaskGroup() : loop_(&get_running_loop()), parent_(current_task()) {
  if (!parent_) throw RuntimeError("TaskGroup must be used inside a task");
}

namespace {
/// The children in creation order (task ids grow with each task created): cancelling in this
/// order keeps traces and tests reproducible, where CPython follows its set's order.
std::vector<AnyTask> in_creation_order(const std::unordered_map<detail::FutureStateBase*, AnyTask>& tasks) {
  std::vector<AnyTask> out;
  out.reserve(tasks.size());
  for (auto& entry : tasks) out.push_back(entry.second);
  std::sort(out.begin(), out.end(), [](const AnyTask& a, const AnyTask& b) { return a.core()->id() < b.core()->id(); });
  return out;
}
}  // namespace

TaskGroup::~TaskGroup() {
  // Only reached with children left if the enclosing frame was destroyed without finishing the
  // group (its loop closed): detach, and make sure the children do not run on unsupervised.
  *self_ = nullptr;
  for (auto& task : in_creation_order(tasks_)) {
    task.state()->remove_callback(&on_task_done_soon, this);
    task.cancel();
  }
}

void TaskGroup::check_open() const {
  if (finished_ || (exiting_ && tasks_.empty())) throw RuntimeError("TaskGroup is finished");
  if (aborting_) throw RuntimeError("TaskGroup is shutting down");
}

void TaskGroup::adopt(AnyTask task) {
  detail::FutureStateBase* state = task.state();
  tasks_.emplace(state, task);
  if (task.done())
    on_task_done_soon(this, *state);
  else
    state->add_callback(detail::DoneCallback{&on_task_done_soon, this});
}

void TaskGroup::abort() {
  aborting_ = true;
  for (auto& task : in_creation_order(tasks_))
    if (!task.done()) task.cancel();
}

// As in CPython, the group learns of a finished child through call_soon: children that fail in
// the same loop iteration all finish (and are all reported) before the group aborts the rest.
void TaskGroup::on_task_done_soon(void* self, detail::FutureStateBase& f) {
  auto* g = static_cast<TaskGroup*>(self);
  // The call holds its own reference: the group's map may hold the only other one.
  g->loop_->call_soon([group = g->self_, state = detail::Ref<detail::FutureStateBase>(&f)] {
    if (*group) (*group)->on_task_done(*state);
  });
}

void TaskGroup::on_task_done(detail::FutureStateBase& f) {
  TaskGroup* g = this;
  g->tasks_.erase(&f);
  if (g->on_completed_ && g->tasks_.empty() && !g->on_completed_.done()) g->on_completed_.set_result();
  if (f.cancelled()) return;
  std::exception_ptr e = f.exception();
  if (!e) return;
  g->errors_.push_back(e);
  if (g->parent_.done()) {
    g->loop_->call_exception_handler({"Task in a TaskGroup failed after the group's task finished", e, f.describe(), {}});
    return;
  }
  if (!g->aborting_ && !g->parent_cancel_requested_) {
    // Stop whatever the block is doing now: cancel the siblings and the task running the block.
    g->abort();
    g->parent_cancel_requested_ = true;
    g->parent_.cancel();
  }
}

Coro<void> TaskGroup::exit(std::exception_ptr error) {
  exiting_ = true;
  bool block_cancelled = is_cancelled_error(error);
  std::exception_ptr propagate_cancel = block_cancelled ? error : nullptr;
  if (error && !aborting_) abort();

  while (!tasks_.empty()) {
    on_completed_ = loop_->create_future<void>();
    std::exception_ptr cancelled;
    try {
      co_await on_completed_;
    } catch (const CancelledError&) {
      cancelled = std::current_exception();
    }
    // Cancelled while waiting for the children: cancel them, keep waiting, then re-raise.
    if (cancelled && !aborting_) {
      propagate_cancel = cancelled;
      abort();
    }
    on_completed_ = Future<void>();
  }
  finished_ = true;

  // Withdraw our own cancellation of the parent only now that no child can fail any more (as
  // CPython 3.13 does, gh-116720): a child failing late must not leave cancelling() raised.
  if (parent_cancel_requested_ && parent_.uncancel() == 0) propagate_cancel = nullptr;

  if (propagate_cancel && errors_.empty()) std::rethrow_exception(propagate_cancel);
  if (error && !block_cancelled) errors_.push_back(error);
  if (!errors_.empty()) {
    // Cancelled from outside as well: keep that request pending (uncancel + cancel keeps the
    // count stable) so the parent still sees it after handling the group's errors.
    if (parent_.cancelling() > 0) {
      parent_.uncancel();
      parent_.cancel();
    }
    auto errors = std::move(errors_);
    errors_.clear();
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
}

}  // namespace asyncio
