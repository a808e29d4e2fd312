// SPDX-License-Identifier: MIT
// Pipes: Python's loop.connect_read_pipe / loop.connect_write_pipe.
//
// A pipe transport drives one end of a pipe (or a socket or a terminal used as one) with a
// protocol, as the socket transports do (transports.hpp, protocols.hpp): a read pipe calls
// data_received / eof_received, then connection_lost when the writer closes its end; a write pipe
// takes write() at once, buffers what the pipe did not take (pause_writing past the high water
// mark), and notices when the reader goes away. The transport owns the descriptor and closes it.
//
//   int fds[2];
//   ::pipe(fds);
//   auto [rt, reader] = co_await asyncio::connect_read_pipe([] { return std::make_shared<Collect>(); }, fds[0]);
//   auto [wt, writer] = co_await asyncio::connect_write_pipe([] { return std::make_shared<asyncio::Protocol>(); }, fds[1]);
//   wt->write("hello");
//   wt->close();  // Collect sees "hello", then eof_received, then connection_lost
//
// For StreamReader / StreamWriter over a pipe see open_read_pipe / open_write_pipe (streams.hpp).
//
// C++ shape: both transports are `Transport`s, so everything written for socket transports
// (protocols, streams) works over them; the calls of the other direction (write() on a read pipe,
// pause_reading() on a write pipe) throw RuntimeError. A write to a pipe whose reader has gone
// fails the transport with EPIPE and never raises SIGPIPE, whatever the process's disposition.
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <memory>
#include <utility>

#include "asyncio/coro.hpp"
#include "asyncio/transports.hpp"

namespace asyncio {

namespace detail {
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<StreamProtocolBase>>> connect_pipe(ProtocolFactory factory,
                                                                                                int fd, bool read);
}  // namespace detail

/// Python's loop.connect_read_pipe: wraps the read end `fd` (a pipe, FIFO, socket or character
/// device; made non-blocking) in a read pipe transport with the protocol `factory` makes. The
/// transport owns `fd` from the call on: it closes it after connection_lost, or at once if this
/// fails. ValueError for a regular file or a bad descriptor. Completes after connection_made.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> connect_read_pipe(
    F factory, int fd) {
  auto r = co_await detail::connect_pipe(ProtocolFactory(std::move(factory)), fd, true);
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<detail::factory_protocol_t<F>>(r.second));
}

/// Python's loop.connect_write_pipe: wraps the write end `fd` in a write pipe transport, as
/// connect_read_pipe does for a read end. close() writes what is buffered, then closes `fd`
/// (the reader sees EOF); abort() closes at once.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>> connect_write_pipe(
    F factory, int fd) {
  auto r = co_await detail::connect_pipe(ProtocolFactory(std::move(factory)), fd, false);
  co_return std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::factory_protocol_t<F>>>(
      std::move(r.first), std::static_pointer_cast<detail::factory_protocol_t<F>>(r.second));
}

}  // namespace asyncio
#pragma GCC visibility pop
