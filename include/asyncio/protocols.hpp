// SPDX-License-Identifier: MIT
// Protocols: the callback side of a connection (Python's asyncio.Protocol family).
//
// A transport (transports.hpp) owns the socket and calls its protocol when something happens:
//
//   connection_made(transport)  once, first
//   data_received(data)         any number of times (Protocol), or
//   get_buffer / buffer_updated (BufferedProtocol: the transport reads straight into your memory)
//   eof_received()              at most once, when the peer shut down its sending side
//   connection_lost(exc)        once, last (null exc: closed normally)
//
// plus pause_writing() / resume_writing() when the transport's write buffer crosses its high and
// low water marks (flow control: stop producing until resume_writing).
//
// Callbacks run on the loop's thread, synchronously, and must not block. The `data` view passed to
// data_received is valid only during the call (the transport reuses its buffer): copy what you
// keep. An exception escaping a callback is reported to the loop's exception handler and aborts
// the connection.
//
//   struct Echo : asyncio::Protocol {
//     asyncio::Transport* transport = nullptr;
//     void connection_made(asyncio::Transport& t) override { transport = &t; }
//     void data_received(std::string_view data) override { transport->write(data); }
//   };
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <cstddef>
#include <exception>
#include <span>
#include <string_view>

namespace asyncio {

class Transport;
class DatagramTransport;
class SocketAddress;

/// What every protocol has (Python's asyncio.BaseProtocol).
class BaseProtocol {
 public:
  virtual ~BaseProtocol() = default;

  /// The connection is closed: `exc` is null after a normal close or EOF, else the error
  /// (std::system_error for OS errors such as ECONNRESET). The transport passed to
  /// connection_made is still valid during this call, and not after it.
  virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
  /// The transport's write buffer went over the high water mark.
  virtual void pause_writing() {}
  /// ... and drained back to the low water mark.
  virtual void resume_writing() {}
};

/// A stream protocol (TCP, Unix sockets). The transport given to connection_made stays valid
/// until connection_lost returns; use `transport.shared_from_this()` to keep it longer.
class StreamProtocolBase : public BaseProtocol {
 public:
  /// Connected: keeps `transport` for the default handlers.
  virtual void connection_made(Transport& transport) { (void)transport; }
  /// The peer will send nothing more. Return true to keep the connection open for writing
  /// (half-close); false (the default) closes the transport.
  virtual bool eof_received() { return false; }
};

/// Data arrives as views of the transport's read buffer (Python's asyncio.Protocol).
class Protocol : public StreamProtocolBase {
 public:
  /// `data` is valid during the call only.
  virtual void data_received(std::string_view data) { (void)data; }
};

/// The zero-copy fast path (Python's asyncio.BufferedProtocol): the transport asks for memory,
/// reads into it, and reports how much it filled.
class BufferedProtocol : public StreamProtocolBase {
 public:
  /// A buffer to receive into; `sizehint` is a suggested minimum size (0: no preference). It must
  /// not be empty and must stay valid until buffer_updated.
  virtual std::span<char> get_buffer(std::size_t sizehint) = 0;
  /// `nbytes` bytes were written at the start of the last buffer.
  virtual void buffer_updated(std::size_t nbytes) = 0;
};

/// A datagram (UDP) protocol (Python's asyncio.DatagramProtocol).
class DatagramProtocol : public BaseProtocol {
 public:
  /// The transport stays valid until connection_lost returns.
  virtual void connection_made(DatagramTransport& transport) { (void)transport; }
  /// One datagram from `addr`. The view is valid during the call only.
  virtual void datagram_received(std::string_view data, const SocketAddress& addr) {
    (void)data;
    (void)addr;
  }
  /// A send or receive failed (ICMP port unreachable comes back as ECONNREFUSED, for example).
  /// The transport stays open.
  virtual void error_received(std::exception_ptr exc) { (void)exc; }
};

}  // namespace asyncio
#pragma GCC visibility pop
