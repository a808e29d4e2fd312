// SPDX-License-Identifier: MIT
// Private to the process layer: the subprocess transport (Python's BaseSubprocessTransport).
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "asyncio/future.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/subprocess.hpp"
#include "process/child_watcher.hpp"

namespace asyncio::detail {

/// A subprocess protocol that takes the child's output in its own buffers: the pipe transports
/// read straight into them (BufferedProtocol), where pipe_data_received would need a copy. The
/// stream protocol of create_subprocess_exec/_shell is one: output lands in the StreamReader.
class BufferedPipeReceiver {
 public:
  /// Room for the next read from the child's descriptor `fd` (1 or 2); never empty.
  virtual std::span<char> pipe_get_buffer(int fd) = 0;
  /// `nbytes` bytes were read into the start of that room.
  virtual void pipe_buffer_updated(int fd, std::size_t nbytes) = 0;

 protected:
  ~BufferedPipeReceiver() = default;
};

/// One child, its pipe transports and its protocol. Keeps itself alive (self_) from start() until
/// the protocol's connection_lost: the child has ended and every pipe is closed.
class SubprocessTransportImpl final : public SubprocessTransport, private CloseHook {
 public:
  SubprocessTransportImpl(EventLoop& loop, std::shared_ptr<SubprocessProtocol> protocol);
  ~SubprocessTransportImpl() override;

  /// Spawns the child with `argv` and connects its pipes; completes `waiter` after the
  /// protocol's connection_made. Throws (nothing left running or open) if the child cannot start.
  void start(const std::vector<std::string>& argv, const SubprocessOptions& options, Future<void> waiter);

  // ---- SubprocessTransport ----
  int get_pid() const noexcept override { return pid_; }
  std::optional<int> get_returncode() const noexcept override { return returncode_; }
  std::shared_ptr<Transport> get_pipe_transport(int fd) const override;
  void send_signal(int sig) override;
  void terminate() override;
  void kill() override;
  std::any get_extra_info(std::string_view name, std::any default_value) const override;
  bool is_closing() const noexcept override { return closed_; }
  void close() override;
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }

  /// Python's _wait(): the returncode, once the child has ended.
  Coro<int> wait();

  // ---- from the pipes' protocols ----
  void pipe_data_received(int fd, std::string_view data) noexcept;
  /// The buffered read path (BufferedPipeReceiver); before connection_made, or once the protocol
  /// is one that is not a receiver, a scratch buffer whose bytes go to pipe_data_received.
  std::span<char> pipe_get_buffer(int fd);
  void pipe_buffer_updated(int fd, std::size_t nbytes) noexcept;
  void pipe_connection_lost(int fd, std::exception_ptr exc) noexcept;
  void pipe_pause_writing() noexcept;
  void pipe_resume_writing() noexcept;

 private:
  class PipeProtocol;
  class BufferedPipeProtocol;
  /// The protocol as a receiver, when it is one and is connected: the buffered path is live.
  BufferedPipeReceiver* live_receiver() const noexcept { return connected_ ? receiver_ : nullptr; }
  void connect_pipes(const std::array<int, 3>& parent_ends);
  void process_exited(int returncode) noexcept;
  void try_finish() noexcept;
  void call_connection_lost() noexcept;
  /// Runs `fn` now if the protocol is connected, else once it is (Python's _call / _pending_calls).
  void call(std::function<void()> fn) noexcept;
  /// Calls the protocol (`fn`); what escapes goes to the exception handler. A template, not a
  /// std::function: pipe_data_received runs it for every chunk a child writes.
  template <class Fn>
  void protocol_call(const char* what, Fn&& fn) noexcept {
    try {
      if (protocol_) fn();
    } catch (...) {
      report_protocol_error(what);
    }
  }
  void report_protocol_error(const char* what) noexcept;
  void loop_closing() noexcept override;

  EventLoop& loop_;
  std::shared_ptr<SubprocessProtocol> protocol_;
  BufferedPipeReceiver* receiver_ = nullptr;  // protocol_ as a receiver, if it is one
  std::string scratch_;                       // pipe_get_buffer's room when receiver_ is not live
  std::shared_ptr<SubprocessTransportImpl> self_;
  std::unique_ptr<ChildWatcher> watcher_;
  std::array<std::shared_ptr<Transport>, 3> pipes_{};
  std::array<bool, 3> pipe_open_{};
  std::vector<std::function<void()>> pending_;
  std::vector<Future<int>> exit_waiters_;
  std::optional<int> returncode_;
  int pid_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  bool finished_ = false;
  bool hooked_ = false;
};

}  // namespace asyncio::detail
