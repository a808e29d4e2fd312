// SPDX-License-Identifier: MIT
// The subprocess transport: Python's BaseSubprocessTransport with its pipe protocols.
#include "process/subprocess_transport.hpp"

#include <cerrno>
#include <system_error>

#include "asyncio/log.hpp"
#include "net/net_internal.hpp"
#include "net/pipe_transport.hpp"
#include "os/pipe_io.hpp"
#include "os/process.hpp"

namespace asyncio::detail {

/// The protocol of one of the child's pipes: forwards to the subprocess transport with the
/// child's descriptor number (Python's ReadSubprocessPipeProto / WriteSubprocessPipeProto).
class SubprocessTransportImpl::PipeProtocol final : public Protocol {
 public:
  PipeProtocol(std::weak_ptr<SubprocessTransportImpl> owner, int fd) : owner_(std::move(owner)), fd_(fd) {}
  void data_received(std::string_view data) override {
    if (auto o = owner_.lock()) o->pipe_data_received(fd_, data);
  }
  void connection_lost(std::exception_ptr exc) override {
    if (auto o = owner_.lock()) o->pipe_connection_lost(fd_, std::move(exc));
  }
  void pause_writing() override {
    if (auto o = owner_.lock()) o->pipe_pause_writing();
  }
  void resume_writing() override {
    if (auto o = owner_.lock()) o->pipe_resume_writing();
  }

 private:
  std::weak_ptr<SubprocessTransportImpl> owner_;
  int fd_;
};

/// A read pipe's protocol when the subprocess protocol is a BufferedPipeReceiver: the pipe
/// transport reads into the receiver's buffer.
class SubprocessTransportImpl::BufferedPipeProtocol final : public BufferedProtocol {
 public:
  BufferedPipeProtocol(std::weak_ptr<SubprocessTransportImpl> owner, int fd) : owner_(std::move(owner)), fd_(fd) {}
  std::span<char> get_buffer(std::size_t) override {
    auto o = owner_.lock();
    if (!o) throw RuntimeError("the subprocess transport is gone");
    return o->pipe_get_buffer(fd_);
  }
  void buffer_updated(std::size_t nbytes) override {
    if (auto o = owner_.lock()) o->pipe_buffer_updated(fd_, nbytes);
  }
  void connection_lost(std::exception_ptr exc) override {
    if (auto o = owner_.lock()) o->pipe_connection_lost(fd_, std::move(exc));
  }

 private:
  std::weak_ptr<SubprocessTransportImpl> owner_;
  int fd_;
};

namespace {

/// The descriptors made for one spawn; what is still held here is closed when it goes away.
struct SpawnFds {
  std::array<int, 3> parent{-1, -1, -1};  // our ends of the pipes, by the child's fd
  std::array<int, 3> child{-1, -1, -1};   // the child's ends
  SpawnFds() = default;
  SpawnFds(const SpawnFds&) = delete;
  SpawnFds& operator=(const SpawnFds&) = delete;
  ~SpawnFds() {
    close_child_ends();
    for (int& fd : parent) close(fd);
  }
  void close_child_ends() noexcept {
    for (int& fd : child) close(fd);
  }
  static void close(int& fd) noexcept {
    if (fd >= 0) os::close_fd(fd);
    fd = -1;
  }
};

int stdio_target(const std::optional<int>& choice, int fd, SpawnFds& fds) {
  if (!choice) return os::kStdioInherit;
  int v = *choice;
  if (v >= 0) return v;
  if (v == subprocess::DEVNULL) return os::kStdioDevNull;
  if (v == subprocess::STDOUT) {
    if (fd != 2) throw ValueError("STDOUT can only be used for stderr");
    return os::kStdioAsStdout;
  }
  if (v != subprocess::PIPE) throw ValueError("invalid value for fd " + std::to_string(fd) + ": " + std::to_string(v));
  os::PipeEnds ends = os::make_pipe();
  fds.parent[fd] = fd == 0 ? ends.write : ends.read;
  fds.child[fd] = fd == 0 ? ends.read : ends.write;
  return fds.child[fd];
}

}  // namespace

SubprocessTransportImpl::SubprocessTransportImpl(EventLoop& loop, std::shared_ptr<SubprocessProtocol> protocol)
    : loop_(loop), protocol_(std::move(protocol)), receiver_(dynamic_cast<BufferedPipeReceiver*>(protocol_.get())) {}

SubprocessTransportImpl::~SubprocessTransportImpl() {
  if (hooked_) loop_.remove_close_hook(this);
  // Only a start() that failed half-way leaves a child unreaped here.
  if (watcher_ && !watcher_->reaped()) watcher_->reap_now();
}

void SubprocessTransportImpl::start(const std::vector<std::string>& argv, const SubprocessOptions& options,
                                    Future<void> waiter) {
  if (!protocol_) throw ValueError("protocol_factory returned no protocol");
  os::SpawnRequest request;
  request.argv = argv;
  SpawnFds fds;
  request.stdio[0] = stdio_target(options.stdin, 0, fds);
  request.stdio[1] = stdio_target(options.stdout, 1, fds);
  request.stdio[2] = stdio_target(options.stderr, 2, fds);
  if (options.env) {
    request.env.emplace();
    for (const auto& [name, value] : *options.env) request.env->push_back(name + "=" + value);
  }
  request.cwd = options.cwd;
  request.start_new_session = options.start_new_session;
  if (options.process_group) request.process_group = *options.process_group;
  request.pass_fds = options.pass_fds;

  pid_ = os::spawn(request);
  fds.close_child_ends();
  // From here on a failure kills and reaps the child (the destructor) before it propagates.
  auto self = std::static_pointer_cast<SubprocessTransportImpl>(BaseTransport::shared_from_this());
  watcher_ = std::make_unique<ChildWatcher>(loop_, pid_, [this](int returncode) { process_exited(returncode); });
  for (int fd = 0; fd < 3; ++fd) {
    if (fds.parent[fd] < 0) continue;
    int mine = fds.parent[fd];
    fds.parent[fd] = -1;  // open_pipe_transport owns it now, whatever happens
    std::shared_ptr<StreamProtocolBase> pipe_protocol;
    if (fd != 0 && receiver_)
      pipe_protocol = std::make_shared<BufferedPipeProtocol>(self, fd);
    else
      pipe_protocol = std::make_shared<PipeProtocol>(self, fd);
    pipes_[fd] = open_pipe_transport(loop_, mine, fd == 0 ? PipeDirection::write : PipeDirection::read,
                                     std::move(pipe_protocol), Future<void>());
    pipe_open_[fd] = true;
  }
  self_ = self;
  loop_.add_close_hook(this);
  hooked_ = true;
  loop_.call_soon([self, waiter]() mutable {
    self->protocol_call("connection_made", [&] { self->protocol_->connection_made(*self); });
    self->connected_ = true;
    auto pending = std::move(self->pending_);
    for (auto& fn : pending) fn();
    if (waiter && !waiter.done()) waiter.set_result();
  });
}

std::shared_ptr<Transport> SubprocessTransportImpl::get_pipe_transport(int fd) const {
  if (fd < 0 || fd > 2) return nullptr;
  return pipes_[static_cast<std::size_t>(fd)];
}

std::any SubprocessTransportImpl::get_extra_info(std::string_view name, std::any default_value) const {
  if (name == "subprocess") return std::any(pid_);
  return default_value;
}

void SubprocessTransportImpl::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  auto p = std::dynamic_pointer_cast<SubprocessProtocol>(protocol);
  if (!p) throw ValueError("a subprocess transport needs a SubprocessProtocol");
  protocol_ = std::move(p);
  receiver_ = dynamic_cast<BufferedPipeReceiver*>(protocol_.get());
}

// ---- signals ---------------------------------------------------------------------------------------

void SubprocessTransportImpl::send_signal(int sig) {
  // As Python's _check_proc: a transport whose connection_lost has run has no process.
  if (finished_ && !self_) throw std::system_error(ESRCH, std::system_category(), "ProcessLookupError");
  if (watcher_) watcher_->send_signal(sig);
}

void SubprocessTransportImpl::terminate() { send_signal(os::sigterm()); }
void SubprocessTransportImpl::kill() { send_signal(os::sigkill()); }

// ---- events ----------------------------------------------------------------------------------------

void SubprocessTransportImpl::report_protocol_error(const char* what) noexcept {
  try {
    loop_.call_exception_handler({std::string("Exception in SubprocessProtocol.") + what + "()",
                                  std::current_exception(), {}, {}});
  } catch (...) {
  }
}

void SubprocessTransportImpl::call(std::function<void()> fn) noexcept {
  if (connected_) {
    fn();
    return;
  }
  try {
    pending_.push_back(std::move(fn));
  } catch (...) {
  }
}

void SubprocessTransportImpl::pipe_data_received(int fd, std::string_view data) noexcept {
  if (connected_) {
    protocol_call("pipe_data_received", [&] { protocol_->pipe_data_received(fd, data); });
    return;
  }
  call([this, fd, copy = std::string(data)] {
    protocol_call("pipe_data_received", [&] { protocol_->pipe_data_received(fd, copy); });
  });
}

std::span<char> SubprocessTransportImpl::pipe_get_buffer(int fd) {
  if (BufferedPipeReceiver* r = live_receiver()) return r->pipe_get_buffer(fd);
  scratch_.resize(64 * 1024);
  return {scratch_.data(), scratch_.size()};
}

void SubprocessTransportImpl::pipe_buffer_updated(int fd, std::size_t nbytes) noexcept {
  if (BufferedPipeReceiver* r = live_receiver()) {
    protocol_call("pipe_data_received", [&] { r->pipe_buffer_updated(fd, nbytes); });
    return;
  }
  pipe_data_received(fd, std::string_view(scratch_.data(), nbytes));
}

void SubprocessTransportImpl::pipe_connection_lost(int fd, std::exception_ptr exc) noexcept {
  pipe_open_[static_cast<std::size_t>(fd)] = false;
  call([this, fd, exc] {
    protocol_call("pipe_connection_lost", [&] { protocol_->pipe_connection_lost(fd, exc); });
    try_finish();
  });
}

void SubprocessTransportImpl::pipe_pause_writing() noexcept {
  protocol_call("pause_writing", [&] { protocol_->pause_writing(); });
}

void SubprocessTransportImpl::pipe_resume_writing() noexcept {
  protocol_call("resume_writing", [&] { protocol_->resume_writing(); });
}

void SubprocessTransportImpl::process_exited(int returncode) noexcept {
  if (loop_.get_debug()) log(LogLevel::info, "process " + std::to_string(pid_) + " exited with returncode " + std::to_string(returncode));
  returncode_ = returncode;
  auto waiters = std::move(exit_waiters_);
  for (auto& w : waiters)
    if (!w.done()) w.set_result(returncode);
  call([this] {
    protocol_call("process_exited", [&] { protocol_->process_exited(); });
    try_finish();
  });
}

void SubprocessTransportImpl::try_finish() noexcept {
  if (finished_ || !returncode_) return;
  for (bool open : pipe_open_)
    if (open) return;
  finished_ = true;
  try {
    loop_.call_soon([self = self_] { self->call_connection_lost(); });
  } catch (...) {
  }
}

void SubprocessTransportImpl::call_connection_lost() noexcept {
  auto keep = std::move(self_);  // released last
  if (hooked_) {
    hooked_ = false;
    loop_.remove_close_hook(this);
  }
  protocol_call("connection_lost", [&] { protocol_->connection_lost(nullptr); });
  protocol_.reset();
}

Coro<int> SubprocessTransportImpl::wait() {
  if (returncode_) co_return *returncode_;
  Future<int> exit = loop_.create_future<int>();
  exit_waiters_.push_back(exit);
  co_return co_await exit;
}

// ---- closing ---------------------------------------------------------------------------------------

void SubprocessTransportImpl::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& pipe : pipes_)
    if (pipe && !pipe->is_closing()) pipe->close();
  if (!returncode_ && watcher_ && !watcher_->reaped()) {
    if (loop_.get_debug()) log(LogLevel::warning, "Close running child process: kill pid " + std::to_string(pid_));
    watcher_->send_signal(os::sigkill());
  }
}

void SubprocessTransportImpl::loop_closing() noexcept {
  hooked_ = false;  // the loop unregistered us
  auto keep = std::move(self_);  // may be the last reference: released at the very end
  if (watcher_) watcher_->reap_now();
  exit_waiters_.clear();
  pending_.clear();
  protocol_.reset();  // no more callbacks: no loop will run them
}

}  // namespace asyncio::detail
