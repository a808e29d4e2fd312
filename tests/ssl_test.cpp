// SPDX-License-Identifier: MIT
// TLS (ssl.hpp): contexts, verified and refused handshakes, data both ways, closing, timeouts,
// and Python's ssl module on the other end.
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "log_capture.hpp"
#include "net_support.hpp"
#include "tls_support.hpp"

using asyncio::Coro;
using asyncio::StreamReader;
using asyncio::StreamWriter;
using net_test::port_of;
using net_test::run_loop;
namespace ssl = asyncio::ssl;

namespace {

using tls_test::certificate;
using tls_test::server_context;
using tls_test::trusting_client;

asyncio::ServerOptions tls_server_options() {
  asyncio::ServerOptions options;
  options.ssl = server_context();
  return options;
}

asyncio::ConnectOptions tls_client_options(ssl::SSLContext ctx, std::string server_hostname = "localhost") {
  asyncio::ConnectOptions options;
  options.ssl = std::move(ctx);
  options.server_hostname = std::move(server_hostname);
  return options;
}

/// Echoes until EOF, then closes.
Coro<void> echo(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string data = co_await reader.read(65536);
    if (data.empty()) break;
    writer.write(data);
    co_await writer.drain();
  }
  writer.close();
}

Coro<asyncio::Server> start_echo_server() {
  asyncio::ServerOptions options = tls_server_options();
  co_return co_await asyncio::start_server(echo, "127.0.0.1", 0, std::move(options));
}

/// Connects over TLS with `ctx`, sees one byte echoed, and closes.
Coro<void> expect_one_echo(std::uint16_t port, ssl::SSLContext ctx, std::string server_hostname) {
  auto options = tls_client_options(std::move(ctx), std::move(server_hostname));
  auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port, std::move(options));
  writer.write("e");
  EXPECT_EQ(co_await reader.readexactly(1), "e");
  writer.close();
  co_await writer.wait_closed();
}

template <class E>
Coro<E> failure_of(Coro<std::pair<StreamReader, StreamWriter>> connecting) {
  try {
    co_await std::move(connecting);
  } catch (const E& e) {
    co_return e;
  }
  throw std::runtime_error("the connection was expected to fail");
}

}  // namespace

TEST(ssl, EchoOverAVerifiedConnection) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    writer.write("hello over TLS\n");
    co_await writer.drain();
    EXPECT_EQ(co_await reader.readline(), "hello over TLS\n");
    auto peercert = writer.get_extra_info("peercert");
    CO_ASSERT_TRUE(peercert.has_value());
    EXPECT_NE(std::any_cast<std::string>(peercert).find("CN=localhost"), std::string::npos);
    EXPECT_FALSE(std::any_cast<std::string>(writer.get_extra_info("cipher")).empty());
    EXPECT_EQ(std::any_cast<std::string>(writer.get_extra_info("ssl_version")).rfind("TLSv1.", 0), 0u);
    EXPECT_TRUE(writer.get_extra_info("peername").has_value());  // the socket's, passed through
    writer.close();
    co_await writer.wait_closed();
  }());
}

TEST(ssl, AnIpAddressHostIsCheckedAgainstTheCertificatesAddresses) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    co_await expect_one_echo(port_of(server), trusting_client(), "");  // defaults to the host, 127.0.0.1
  }());
}

TEST(ssl, AnUntrustedCertificateFailsTheHandshakeAndLeaksNothing) {
  int fds_before = net_test::count_open_fds();
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(ssl::create_default_context());  // system CAs only
    auto e = co_await failure_of<ssl::SSLCertVerificationError>(
        asyncio::open_connection("127.0.0.1", port_of(server), std::move(options)));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    EXPECT_NE(std::string(e.what()).find("certificate verify failed"), std::string::npos);
    server.close();
    co_await server.wait_closed();
  }());
  EXPECT_EQ(net_test::count_open_fds(), fds_before);
}

TEST(ssl, CancellingOpenConnectionAtAnyPointLogsNothingAndLeaksNothing) {
  testing_support::LogCapture log;
  int fds_before = net_test::count_open_fds();
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    ssl::SSLContext client = trusting_client();  // loading the CAs once keeps the test quick
    // Cancel after 0, 1, ... loop iterations: during the connect, while the transport starts,
    // during the handshake, and after it.
    int cancelled = 0, connected = 0;
    // Until a connection is made before its cancel (the name lookup runs on a thread: that
    // takes a hundred iterations or so).
    for (int iterations = 0; connected == 0 && iterations < 300; ++iterations) {
      auto options = tls_client_options(client);
      auto connecting = asyncio::create_task(asyncio::open_connection("127.0.0.1", port_of(server), std::move(options)));
      for (int i = 0; i < iterations; ++i) co_await asyncio::sleep(0);
      connecting.cancel();
      try {
        auto conn = co_await connecting;  // it finished before the cancel
        ++connected;
        conn.second.close();
        co_await conn.second.wait_closed();
      } catch (const asyncio::CancelledError&) {
        ++cancelled;
      }
    }
    EXPECT_GT(cancelled, 0);
    EXPECT_EQ(connected, 1);  // the range reaches past the handshake
    co_await asyncio::sleep(0.05);  // the server's side of each connection ends too
    server.close();
    co_await server.wait_closed();
  }());
  EXPECT_EQ(log.count("never retrieved"), 0u);
  EXPECT_EQ(net_test::count_open_fds(), fds_before);
}

TEST(ssl, SetWriteBufferLimitsRefusesANegativeMarkWithPythonsMessage) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    try {
      writer.transport().set_write_buffer_limits(-1);
      ADD_FAILURE() << "a negative high mark was accepted";
    } catch (const asyncio::ValueError& e) {
      EXPECT_STREQ(e.what(), "high (-1) must be >= low (-1) must be >= 0");
    }
    EXPECT_EQ(writer.transport().get_write_buffer_limits(), std::make_pair(std::size_t{16384}, std::size_t{65536}));
    writer.close();
    co_await writer.wait_closed();
  }());
}

TEST(ssl, AHostNameTheCertificateDoesNotCarryIsRefused) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client(), "example.com");
    auto e = co_await failure_of<ssl::SSLCertVerificationError>(
        asyncio::open_connection("127.0.0.1", port_of(server), std::move(options)));
    EXPECT_EQ(e.verify_code(), X509_V_ERR_HOSTNAME_MISMATCH);
  }());
}

TEST(ssl, VerificationCanBeTurnedOff) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    ssl::SSLContext ctx(ssl::Side::client);
    EXPECT_THROW(ctx.set_verify_mode(ssl::VerifyMode::none), asyncio::ValueError);  // check_hostname first
    ctx.set_check_hostname(false);
    ctx.set_verify_mode(ssl::VerifyMode::none);
    co_await expect_one_echo(port_of(server), ctx, "");
  }());
}

TEST(ssl, MegabytesBothWaysWithBackpressure) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    std::string block(256 * 1024, 'a');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 23);
    constexpr int kBlocks = 32;  // 8 MiB
    auto sending = asyncio::create_task([](StreamWriter w, std::string b) -> Coro<void> {
      for (int i = 0; i < kBlocks; ++i) {
        w.write(b);
        co_await w.drain();  // the echo comes back only as fast as we read it
      }
      co_return;
    }(writer, block));
    for (int i = 0; i < kBlocks; ++i) {
      std::string got = co_await reader.readexactly(block.size());
      EXPECT_TRUE(got == block) << "block " << i;
    }
    co_await sending;
    writer.close();
    co_await writer.wait_closed();
  }());
}

TEST(ssl, CloseSendsCloseNotifyAndThePeerReadsEof) {
  run_loop([]() -> Coro<void> {
    asyncio::Future<std::string> server_saw = asyncio::get_running_loop().create_future<std::string>();
    auto handler = [&server_saw](StreamReader reader, StreamWriter writer) -> Coro<void> {
      std::string all = co_await reader.read();  // until EOF
      server_saw.set_result(all);
      writer.close();
    };
    asyncio::ServerOptions sopts = tls_server_options();
    asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0, std::move(sopts));
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    writer.write("last words");
    EXPECT_FALSE(writer.can_write_eof());
    EXPECT_THROW(writer.write_eof(), asyncio::RuntimeError);  // TLS has no half-close
    writer.close();
    co_await writer.wait_closed();
    EXPECT_EQ(co_await server_saw, "last words");
  }());
}

TEST(ssl, AHandshakeThatNeverEndsTimesOut) {
  run_loop([]() -> Coro<void> {
    asyncio::Socket silent = net_test::listen_tcp();  // accepts (in the kernel) and never answers
    auto options = tls_client_options(trusting_client());
    options.ssl_handshake_timeout = 0.2;
    double start = asyncio::get_running_loop().time();
    auto e = co_await failure_of<std::system_error>(
        asyncio::open_connection("127.0.0.1", silent.getsockname().port(), std::move(options)));
    EXPECT_EQ(e.code(), std::errc::connection_aborted);
    EXPECT_GE(asyncio::get_running_loop().time() - start, 0.19);
  }());
}

TEST(ssl, APlainClientIsDroppedAndTheServerGoesOnServing) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto [plain_reader, plain_writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server));
    plain_writer.write("GET / HTTP/1.0\r\n\r\n");
    std::string answer;
    try {
      answer = co_await plain_reader.read();  // the server's alert, then EOF
    } catch (const std::system_error&) {
      // or a reset: either way the connection ends
    }
    EXPECT_EQ(answer.find("HTTP"), std::string::npos);
    plain_writer.close();
    co_await expect_one_echo(port_of(server), trusting_client(), "localhost");
  }());
}

TEST(ssl, AlpnPicksAProtocolBothSidesKnow) {
  run_loop([]() -> Coro<void> {
    asyncio::ServerOptions sopts = tls_server_options();
    std::vector<std::string> server_protocols;
    server_protocols.push_back("http/1.1");
    sopts.ssl->set_alpn_protocols(server_protocols);
    asyncio::Server server = co_await asyncio::start_server(echo, "127.0.0.1", 0, std::move(sopts));
    ssl::SSLContext ctx = trusting_client();
    std::vector<std::string> client_protocols;
    client_protocols.push_back("h2");
    client_protocols.push_back("http/1.1");
    ctx.set_alpn_protocols(client_protocols);
    auto options = tls_client_options(ctx);
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    EXPECT_EQ(std::any_cast<std::string>(writer.get_extra_info("selected_alpn_protocol")), "http/1.1");
    writer.close();
    co_await writer.wait_closed();
  }());
}

TEST(ssl, OptionsAreCheckedAsPythonDoes) {
  run_loop([]() -> Coro<void> {
    asyncio::ConnectOptions no_ssl;
    no_ssl.server_hostname = "localhost";
    auto without_ssl = asyncio::open_connection("127.0.0.1", 1, std::move(no_ssl));  // named: see below
    EXPECT_THROW(co_await std::move(without_ssl), asyncio::ValueError);
    asyncio::ConnectOptions server_side_ctx;
    server_side_ctx.ssl = server_context();
    auto wrong_side = asyncio::open_connection("127.0.0.1", 1, std::move(server_side_ctx));
    EXPECT_THROW(co_await std::move(wrong_side), asyncio::ValueError);
    ssl::SSLContext ctx(ssl::Side::client);
    EXPECT_THROW(ctx.load_cert_chain("/nonexistent/cert.pem"), ssl::SSLError);
  }());
}

TEST(ssl_interop, PythonsSslClientAgainstOurServer) {
  run_loop(
      []() -> Coro<void> {
        asyncio::Server server = co_await start_echo_server();
        const char* script = R"PY(
import asyncio, ssl, sys
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    reader, writer = await asyncio.open_connection('127.0.0.1', int(sys.argv[1]), ssl=ctx,
                                                   server_hostname='localhost')
    writer.write(b'from python\n')
    await writer.drain()
    print((await reader.readline()).decode(), end='')
    print(writer.get_extra_info('ssl_object').version())
    writer.close()
    await writer.wait_closed()
asyncio.run(main())
)PY";
        std::vector<std::string> args;
        args.push_back(std::to_string(port_of(server)));
        args.push_back(certificate().cert);
        net_test::ProcessResult r = co_await net_test::run_python(script, std::move(args));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(r.output.rfind("from python\nTLSv1.3\n", 0), 0u) << r.output;
      }(),
      60);
}

TEST(ssl_interop, OurClientAgainstPythonsSslServer) {
  run_loop(
      []() -> Coro<void> {
        const char* script = R"PY(
import asyncio, ssl, sys
async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    done = asyncio.Event()
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(b'py:' + line)
        await writer.drain()
        writer.close()
        done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()
    await server.wait_closed()
asyncio.run(main())
)PY";
        std::vector<std::string> argv;
        for (std::string a : {net_test::python(), std::string("-c"), std::string(script), certificate().cert, certificate().key})
          argv.push_back(a);
        net_test::Child child = net_test::spawn(std::move(argv));
        std::string port_line = co_await net_test::read_line(child);
        int port = std::atoi(port_line.c_str());
        CO_ASSERT_TRUE(port > 0);
        auto options = tls_client_options(trusting_client());
        auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", static_cast<std::uint16_t>(port),
                                                                  std::move(options));
        writer.write("hello python\n");
        co_await writer.drain();
        EXPECT_EQ(co_await reader.readline(), "py:hello python\n");
        EXPECT_EQ(co_await reader.read(), "");  // Python closed
        writer.close();
        co_await writer.wait_closed();
        net_test::ProcessResult r = co_await net_test::finish(child);
        EXPECT_EQ(r.exit_code, 0) << r.output;
      }(),
      60);
}

TEST(ssl, StartTlsUpgradesAPlainStreamConnection) {
  run_loop([]() -> Coro<void> {
    auto handler = [](StreamReader reader, StreamWriter writer) -> Coro<void> {
      EXPECT_EQ(co_await reader.readline(), "STARTTLS\n");
      writer.write("GO\n");
      co_await writer.start_tls(server_context());
      std::string line = co_await reader.readline();
      writer.write("tls:" + line);
      co_await writer.drain();
      writer.close();
    };
    asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0);
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server));
    EXPECT_FALSE(writer.get_extra_info("cipher").has_value());
    writer.write("STARTTLS\n");
    EXPECT_EQ(co_await reader.readline(), "GO\n");
    co_await writer.start_tls(trusting_client(), "localhost");
    EXPECT_TRUE(writer.get_extra_info("cipher").has_value());
    writer.write("secret\n");
    EXPECT_EQ(co_await reader.readline(), "tls:secret\n");
    EXPECT_EQ(co_await reader.read(), "");  // the server's close_notify
    writer.close();
    try {
      co_await writer.wait_closed();
    } catch (const std::system_error& e) {
      // Our close_notify may reach a server that has closed already; wait_closed then reports
      // the reset, as Python's does.
      EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
    }
  }());
}

TEST(ssl, StartTlsRefusesATransportThatIsNotASocketConnection) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    // The call made first: g++ 12 destroys the temporaries of a co_await that throws twice
    // (here the converted protocol pointer and the context's copy).
    std::shared_ptr<asyncio::StreamProtocolBase> protocol = std::make_shared<asyncio::Protocol>();
    auto upgrading = asyncio::start_tls(writer.transport(), protocol, trusting_client());
    EXPECT_THROW(co_await std::move(upgrading), asyncio::RuntimeError);
    writer.close();
    co_await writer.wait_closed();
  }());
}

TEST(ssl, SendfileOverTlsCopiesTheFileThroughTheEncryption) {
  net_test::TempDir dir;
  std::string content;
  int fd = net_test::patterned_file(dir, 1024 * 1024 + 3, content);
  run_loop([&]() -> Coro<void> {
    asyncio::Future<std::string> server_saw = asyncio::get_running_loop().create_future<std::string>();
    auto handler = [&server_saw](StreamReader reader, StreamWriter writer) -> Coro<void> {
      server_saw.set_result(co_await reader.read());
      writer.close();
    };
    asyncio::ServerOptions sopts = tls_server_options();
    asyncio::Server server = co_await asyncio::start_server(handler, "127.0.0.1", 0, std::move(sopts));
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    auto no_fallback = asyncio::sendfile(writer.transport(), fd, 0, std::nullopt, false);  // named: g++ 12
    EXPECT_THROW(co_await std::move(no_fallback), asyncio::SendfileNotAvailableError);
    std::size_t sent = co_await asyncio::sendfile(writer.transport(), fd);
    EXPECT_EQ(sent, content.size());
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(content.size()));
    writer.close();
    EXPECT_TRUE(co_await server_saw == content);
    co_await writer.wait_closed();
  }());
  ::close(fd);
}

TEST(ssl, GarbageAfterTheHandshakeEndsThatConnectionOnly) {
  run_loop([]() -> Coro<void> {
    asyncio::Server server = co_await start_echo_server();
    auto options = tls_client_options(trusting_client());
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port_of(server), std::move(options));
    writer.write("a");
    EXPECT_EQ(co_await reader.readexactly(1), "a");
    // Bytes that are no TLS record, written under the TLS layer straight to the socket.
    auto sock = writer.get_extra_info<asyncio::SocketView>("socket");
    CO_ASSERT_TRUE(sock.has_value());
    const char garbage[] = "\x17\x03\x03\x00\x05not a record at all";
    // All of it, however the non-blocking socket takes it (under injected faults: in pieces).
    for (std::size_t off = 0; off < sizeof garbage - 1;) {
      ssize_t n = ::send(sock->fd, garbage + off, sizeof garbage - 1 - off, MSG_NOSIGNAL);
      if (n > 0) off += static_cast<std::size_t>(n);
      if (n <= 0) CO_ASSERT_TRUE(errno == EINTR || errno == EAGAIN);
    }
    std::string rest;
    try {
      rest = co_await reader.read();  // the server's alert and close: EOF, an SSL error or a reset
    } catch (const std::system_error&) {
    }
    EXPECT_EQ(rest, "");
    writer.close();
    co_await expect_one_echo(port_of(server), trusting_client(), "localhost");  // others are still served
  }());
}
