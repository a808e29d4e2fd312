// SPDX-License-Identifier: MIT
// connect_read_pipe / connect_write_pipe.
#include "asyncio/pipes.hpp"

#include "asyncio/errors.hpp"
#include "net/net_internal.hpp"
#include "net/pipe_transport.hpp"
#include "os/pipe_io.hpp"

namespace asyncio::detail {

Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> connect_pipe(ProtocolFactory factory,
                                                                                                int fd, bool read) {
  EventLoop& loop = get_running_loop();
  std::shared_ptr<StreamProtocolBase> protocol;
  try {
    if (!factory) throw ValueError("protocol_factory is empty");
    protocol = factory();
    if (!protocol) throw ValueError("protocol_factory returned no protocol");
  } catch (...) {
    if (fd >= 0) os::close_fd(fd);
    throw;
  }
  Future<void> waiter = loop.create_future<void>();
  std::shared_ptr<Transport> transport =
      open_pipe_transport(loop, fd, read ? PipeDirection::read : PipeDirection::write, protocol, waiter);
  co_await wait_until_started(*transport, std::move(waiter));
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>(std::move(transport),
                                                                                       std::move(protocol));
}

}  // namespace asyncio::detail
