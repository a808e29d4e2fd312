// SPDX-License-Identifier: MIT
// create_subprocess_exec / create_subprocess_shell and Process (Python's asyncio.subprocess), and
// the low-level subprocess_exec / subprocess_shell they stand on.
#include <cerrno>
#include <system_error>

#include "asyncio/gather.hpp"
#include "asyncio/subprocess.hpp"
#include "net/net_internal.hpp"
#include "process/subprocess_transport.hpp"

namespace asyncio {

namespace detail {

std::vector<std::string> shell_argv(std::string cmd) { return {"/bin/sh", "-c", std::move(cmd)}; }

SubprocessOptions all_pipes() {
  SubprocessOptions options;
  options.stdin = options.stdout = options.stderr = subprocess::PIPE;
  return options;
}

Coro<std::pair<std::shared_ptr<SubprocessTransport>, std::shared_ptr<SubprocessProtocol>>> subprocess_start(
    SubprocessProtocolFactory factory, std::vector<std::string> argv, SubprocessOptions options) {
  EventLoop& loop = get_running_loop();
  if (!factory) throw ValueError("protocol_factory is empty");
  std::shared_ptr<SubprocessProtocol> protocol = factory();
  auto transport = std::make_shared<SubprocessTransportImpl>(loop, protocol);
  Future<void> waiter = loop.create_future<void>();
  transport->start(argv, options, waiter);
  co_await wait_until_started(*transport, std::move(waiter));
  co_return std::pair<std::shared_ptr<SubprocessTransport>, std::shared_ptr<SubprocessProtocol>>(
      std::move(transport), std::move(protocol));
}

/// Python's SubprocessStreamProtocol: the child's stdout and stderr pipes feed StreamReaders, its
/// stdin pipe is a StreamWriter; the transport closes once the child has ended and every pipe
/// has closed.
class SubprocessStreamProtocol final : public SubprocessProtocol, public BufferedPipeReceiver {
 public:
  SubprocessStreamProtocol(std::ptrdiff_t limit, const SubprocessOptions& options) : limit_(limit) {
    if (options.stdout == subprocess::PIPE) stdout_.emplace(limit);
    if (options.stderr == subprocess::PIPE) stderr_.emplace(limit);
  }

  void connection_made(SubprocessTransport& transport) override {
    transport_ = &transport;
    for (int fd = 1; fd <= 2; ++fd) {
      if (std::shared_ptr<Transport> pipe = transport.get_pipe_transport(fd)) {
        reader(fd)->set_transport(pipe.get());
        open_pipes_ |= 1u << fd;
      }
    }
    if (std::shared_ptr<Transport> pipe = transport.get_pipe_transport(0)) {
      auto made = make_stream_writer(std::move(pipe));
      stdin_ = std::move(made.first);
      stdin_events_ = std::move(made.second);
      open_pipes_ |= 1u;
    }
  }
  void pipe_data_received(int fd, std::string_view data) override {
    if (StreamReader* r = reader(fd)) r->feed_data(data);
  }
  // The child's output is read straight into its StreamReader's buffer.
  std::span<char> pipe_get_buffer(int fd) override {
    if (StreamReader* r = reader(fd)) return reader_get_buffer(*r);
    throw RuntimeError("no StreamReader for the child's descriptor " + std::to_string(fd));
  }
  void pipe_buffer_updated(int fd, std::size_t nbytes) override {
    if (StreamReader* r = reader(fd)) reader_buffer_updated(*r, nbytes);
  }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    if (fd == 0) {
      if (stdin_events_) stdin_events_->connection_lost(exc);
    } else if (StreamReader* r = reader(fd)) {
      if (exc)
        r->set_exception(exc);
      else
        r->feed_eof();
      r->set_transport(nullptr);
    }
    open_pipes_ &= ~(1u << fd);
    maybe_close_transport();
  }
  void pause_writing() override {
    if (stdin_events_) stdin_events_->pause_writing();
  }
  void resume_writing() override {
    if (stdin_events_) stdin_events_->resume_writing();
  }
  void process_exited() override {
    exited_ = true;
    maybe_close_transport();
  }

  StreamReader* reader(int fd) {
    auto& r = fd == 1 ? stdout_ : stderr_;
    return fd >= 1 && fd <= 2 && r ? &*r : nullptr;
  }

  std::ptrdiff_t limit_;
  std::optional<StreamReader> stdout_;
  std::optional<StreamReader> stderr_;
  StreamWriter stdin_;

 private:
  void maybe_close_transport() {
    if (open_pipes_ == 0 && exited_ && transport_) {
      transport_->close();
      transport_ = nullptr;
    }
  }

  SubprocessTransport* transport_ = nullptr;
  std::shared_ptr<BaseProtocol> stdin_events_;
  unsigned open_pipes_ = 0;
  bool exited_ = false;
};

class ProcessState {
 public:
  std::shared_ptr<SubprocessTransportImpl> transport;
  std::shared_ptr<SubprocessStreamProtocol> protocol;
};

namespace {

bool is_broken_pipe(const std::system_error& e) noexcept {
  return e.code().value() == EPIPE || e.code().value() == ECONNRESET;
}

/// Python's Process._feed_stdin: a peer that stopped reading is not an error here.
Coro<void> feed_stdin(StreamWriter stdin, std::optional<std::string> input) {
  if (!stdin) co_return;
  try {
    if (input) stdin.write(*input);
    co_await stdin.drain();
  } catch (const std::system_error& e) {
    if (!is_broken_pipe(e)) throw;
  }
  try {
    stdin.close();
    co_await stdin.wait_closed();
  } catch (const std::system_error& e) {
    if (!is_broken_pipe(e)) throw;
  }
}

/// Python's Process._read_stream: all of it, then the pipe is closed.
Coro<std::string> read_stream(std::optional<StreamReader> reader, std::shared_ptr<Transport> pipe) {
  if (!reader) co_return std::string();
  std::string out = co_await reader->read();
  if (pipe) pipe->close();
  co_return out;
}

Coro<std::pair<std::string, std::string>> communicate_impl(std::shared_ptr<ProcessState> s,
                                                           std::optional<std::string> input) {
  auto& p = *s->protocol;
  auto [fed, out, err] = co_await gather(feed_stdin(p.stdin_, std::move(input)),
                                         read_stream(p.stdout_, s->transport->get_pipe_transport(1)),
                                         read_stream(p.stderr_, s->transport->get_pipe_transport(2)));
  (void)fed;
  co_await s->transport->wait();
  co_return std::pair<std::string, std::string>(std::move(out), std::move(err));
}

}  // namespace

Coro<Process> create_process(std::vector<std::string> argv, SubprocessOptions options) {
  auto protocol = std::make_shared<SubprocessStreamProtocol>(options.limit, options);
  SubprocessProtocolFactory factory = [protocol] { return protocol; };  // named: g++ 12 and co_await
  auto made = co_await subprocess_start(std::move(factory), std::move(argv), std::move(options));
  auto state = std::make_shared<ProcessState>();
  state->transport = std::static_pointer_cast<SubprocessTransportImpl>(made.first);
  state->protocol = protocol;
  co_return Process(std::move(state));
}

}  // namespace detail

Process::Process(std::shared_ptr<detail::ProcessState> state) : s_(std::move(state)) {
  stdin = s_->protocol->stdin_;
  stdout = s_->protocol->stdout_;
  stderr = s_->protocol->stderr_;
}

int Process::pid() const noexcept { return s_->transport->get_pid(); }
std::optional<int> Process::returncode() const noexcept { return s_->transport->get_returncode(); }
Coro<int> Process::wait() { return s_->transport->wait(); }
Coro<std::pair<std::string, std::string>> Process::communicate(std::string input) {
  return detail::communicate_impl(s_, std::move(input));
}
Coro<std::pair<std::string, std::string>> Process::communicate() { return detail::communicate_impl(s_, std::nullopt); }
void Process::send_signal(int sig) { s_->transport->send_signal(sig); }
void Process::terminate() { s_->transport->terminate(); }
void Process::kill() { s_->transport->kill(); }

Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions options) {
  return detail::create_process(detail::shell_argv(std::move(cmd)), std::move(options));
}
Coro<Process> create_subprocess_shell(std::string cmd) {
  return create_subprocess_shell(std::move(cmd), SubprocessOptions());
}

}  // namespace asyncio
