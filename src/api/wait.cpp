// SPDX-License-Identifier: MIT
#include "asyncio/wait.hpp"

namespace asyncio::detail {

MultiWait::MultiWait(EventLoop& loop, std::vector<FutureStateBase*> futures, ReturnWhen when)
    : futures_(std::move(futures)), signal_(loop), remaining_(futures_.size()), when_(when) {
  for (auto* f : futures_) {
    if (f->done()) check(*f);
  }
  if (satisfied_) return;
  for (auto* f : futures_)
    if (!f->done()) f->add_callback(DoneCallback{&on_done, this});
}

MultiWait::~MultiWait() {
  for (auto* f : futures_) f->remove_callback(&on_done, this);
}

void MultiWait::on_done(void* self, FutureStateBase& f) { static_cast<MultiWait*>(self)->check(f); }

void MultiWait::check(FutureStateBase& f) {
  --remaining_;
  bool hit = remaining_ == 0 || when_ == ReturnWhen::FIRST_COMPLETED ||
             (when_ == ReturnWhen::FIRST_EXCEPTION && !f.cancelled() && f.has_exception());
  if (!hit || satisfied_) return;
  satisfied_ = true;
  if (!signal_.done()) signal_.set_result();
}

}  // namespace asyncio::detail
