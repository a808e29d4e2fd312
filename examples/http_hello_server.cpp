// SPDX-License-Identifier: MIT
// A tiny HTTP/1.1 "hello world" server for load tests, on the transport/protocol fast path.
// Usage: http_hello_server [host] [port]   (default 127.0.0.1 8080; port 0 picks a free one)
//
//   $ curl -v http://127.0.0.1:8080/          -> 200 "Hello, World!"
//   $ wrk -t1 -c100 http://127.0.0.1:8080/
//
// Keep-alive is the default (HTTP/1.1), "Connection: close" or HTTP/1.0 without keep-alive close
// after the response, and pipelined requests are answered in order. GET / gets 200, any other
// path 404, any other method 405. Requests are parsed straight out of the transport's read buffer
// (data_received's view) and answered with one write() each: no allocation per request.
#include <asyncio/asyncio.hpp>
#include <cstdio>
#include <cstdlib>
#include <strings.h>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::string_view kHelloClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
constexpr std::string_view kNotFound =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n";
constexpr std::string_view kNotAllowed =
    "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET\r\n\r\n";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::size_t kMaxHead = 16 * 1024;

bool header_says(std::string_view head, std::string_view name, std::string_view value) {
  // Case-insensitive "\r\nName: value" (good enough for a load-test server).
  for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos; pos = head.find("\r\n", pos + 2)) {
    std::string_view line = head.substr(pos + 2, head.find("\r\n", pos + 2) - pos - 2);
    if (line.size() > name.size() + 1 && ::strncasecmp(line.data(), name.data(), name.size()) == 0 &&
        line[name.size()] == ':') {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (v.size() >= value.size() && ::strncasecmp(v.data(), value.data(), value.size()) == 0) return true;
    }
  }
  return false;
}

class HttpHello final : public asyncio::Protocol {
 public:
  void connection_made(asyncio::Transport& t) override { transport_ = &t; }

  void data_received(std::string_view data) override {
    // Usually a whole request arrives at once and is parsed in place; a request split across
    // reads is gathered in `pending_` first.
    if (!pending_.empty()) {
      pending_.append(data);
      std::size_t used = handle(pending_);
      pending_.erase(0, used);
      return;
    }
    std::size_t used = handle(data);
    if (used < data.size()) pending_.assign(data.substr(used));
  }

 private:
  /// Answers every complete request in `buf`; returns the bytes consumed.
  std::size_t handle(std::string_view buf) {
    std::size_t used = 0;
    while (!transport_->is_closing()) {
      std::size_t end = buf.find("\r\n\r\n", used);
      if (end == std::string_view::npos) {
        if (buf.size() - used > kMaxHead) reply_and_close(kBadRequest);
        break;
      }
      std::string_view head = buf.substr(used, end + 2 - used);
      used = end + 4;
      std::string_view request_line = head.substr(0, head.find("\r\n"));
      bool http10 = request_line.ends_with("HTTP/1.0");
      bool close = http10 ? !header_says(head, "Connection", "keep-alive") : header_says(head, "Connection", "close");
      if (!request_line.starts_with("GET ")) {
        transport_->write(kNotAllowed);
      } else if (request_line.starts_with("GET / ") || request_line.starts_with("GET /?")) {
        if (close) {
          reply_and_close(kHelloClose);
          break;
        }
        transport_->write(kHello);
      } else {
        transport_->write(kNotFound);
      }
      if (close) {
        transport_->close();
        break;
      }
    }
    return used;
  }
  void reply_and_close(std::string_view response) {
    transport_->write(response);
    transport_->close();
  }

  asyncio::Transport* transport_ = nullptr;
  std::string pending_;
};

asyncio::Coro<void> main_coro(std::string host, std::uint16_t port) {
  asyncio::Server server =
      co_await asyncio::create_server([] { return std::make_shared<HttpHello>(); }, host, port);
  for (const asyncio::Socket& sock : server.sockets())
    std::printf("Serving HTTP on http://%s/\n", sock.getsockname().to_string().c_str());
  std::fflush(stdout);
  co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "127.0.0.1";
  auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 8080);
  asyncio::run(main_coro(host, port));
}
