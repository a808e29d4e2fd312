// SPDX-License-Identifier: MIT
// Pipes: connect_read_pipe / connect_write_pipe with their transports, and the streams over them
// (open_read_pipe / open_write_pipe).
#include <signal.h>
#include <unistd.h>

#include "net_support.hpp"

using asyncio::Coro;
using net_test::run_loop;

namespace {

struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read = fds[0];
    write = fds[1];
  }
};

/// Records what a pipe transport tells its protocol.
struct Recorder : asyncio::Protocol {
  std::string data;
  std::vector<std::string> events;
  std::exception_ptr lost_exc;
  int pauses = 0, resumes = 0;
  asyncio::Future<void> lost = asyncio::get_running_loop().create_future<void>();
  void connection_made(asyncio::Transport&) override { events.push_back("made"); }
  void data_received(std::string_view d) override { data += d; }
  bool eof_received() override {
    events.push_back("eof");
    return false;
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }
  void connection_lost(std::exception_ptr e) override {
    events.push_back("lost");
    lost_exc = e;
    lost.set_result();
  }
};

auto recorder() {
  return [] { return std::make_shared<Recorder>(); };
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST(ReadPipe, DeliversDataThenEofThenConnectionLostAndClosesTheDescriptor) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_read_pipe(factory, pipe.read);
    EXPECT_TRUE(transport->is_reading());
    EXPECT_EQ(std::any_cast<int>(transport->get_extra_info("pipe")), pipe.read);
    EXPECT_EQ(::write(pipe.write, "hello", 5), 5);
    ::close(pipe.write);
    co_await protocol->lost;
    EXPECT_EQ(protocol->data, "hello");
    EXPECT_EQ(protocol->events, (std::vector<std::string>{"made", "eof", "lost"}));
    EXPECT_EQ(protocol->lost_exc, nullptr);
    EXPECT_TRUE(transport->is_closing());
  }(p));
  EXPECT_FALSE(fd_is_open(p.read));
}

TEST(ReadPipe, PauseReadingStopsDeliveryUntilResumed) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_read_pipe(factory, pipe.read);
    transport->pause_reading();
    EXPECT_FALSE(transport->is_reading());
    EXPECT_EQ(::write(pipe.write, "x", 1), 1);
    co_await asyncio::sleep(0.05);
    EXPECT_EQ(protocol->data, "");
    transport->resume_reading();
    for (int i = 0; i < 100 && protocol->data.empty(); ++i) co_await asyncio::sleep(0.01);
    EXPECT_EQ(protocol->data, "x");
    ::close(pipe.write);
    co_await protocol->lost;
  }(p));
}

TEST(ReadPipe, CloseEndsItWithoutEof) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_read_pipe(factory, pipe.read);
    transport->close();
    co_await protocol->lost;
    EXPECT_EQ(protocol->events, (std::vector<std::string>{"made", "lost"}));
  }(p));
  ::close(p.write);
}

TEST(ReadPipe, WritingCallsThrowRuntimeError) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_read_pipe(factory, pipe.read);
    EXPECT_THROW(transport->write("x"), asyncio::RuntimeError);
    EXPECT_THROW(transport->write_eof(), asyncio::RuntimeError);
    EXPECT_FALSE(transport->can_write_eof());
    transport->close();
    co_await protocol->lost;
  }(p));
  ::close(p.write);
}

TEST(ReadPipe, ARegularFileIsRefusedWithValueErrorAndClosed) {
  net_test::TempDir dir;
  int fd = ::open(dir.file("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_THROW(run_loop(asyncio::connect_read_pipe(recorder(), fd)), asyncio::ValueError);
  EXPECT_FALSE(fd_is_open(fd));
}

TEST(WritePipe, WritesAndCloseGivesTheReaderEof) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_write_pipe(factory, pipe.write);
    EXPECT_TRUE(transport->can_write_eof());
    transport->write("abc");
    transport->writelines({"d", "ef"});
    transport->close();
    co_await protocol->lost;
    EXPECT_EQ(protocol->lost_exc, nullptr);
  }(p));
  char buf[16];
  EXPECT_EQ(::read(p.read, buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
  EXPECT_EQ(::read(p.read, buf, sizeof buf), 0);  // EOF: the write end was closed
  ::close(p.read);
}

TEST(WritePipe, NoticesTheReaderLeaving) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_write_pipe(factory, pipe.write);
    ::close(pipe.read);
    co_await protocol->lost;
    EXPECT_EQ(protocol->lost_exc, nullptr);  // nothing was buffered: a plain close
  }(p));
}

TEST(WritePipe, AWriteToAPipeWithoutReaderIsEpipeNotSigpipe) {
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL);  // SIGPIPE would kill the test
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_write_pipe(factory, pipe.write);
    ::close(pipe.read);
    transport->write("into the void");
    co_await protocol->lost;
    CO_ASSERT_TRUE(protocol->lost_exc != nullptr);
    try {
      std::rethrow_exception(protocol->lost_exc);
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);
    }
  }(p));
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(WritePipe, FlowControlPausesAndResumesTheProtocol) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_write_pipe(factory, pipe.write);
    transport->write(std::string(1 << 20, 'z'));  // more than the pipe holds
    EXPECT_GT(transport->get_write_buffer_size(), 64u * 1024);
    EXPECT_EQ(protocol->pauses, 1);
    std::size_t drained = 0;
    char buf[65536];
    while (drained < (1u << 20)) {
      co_await asyncio::sleep(0.001);
      ssize_t n = ::read(pipe.read, buf, sizeof buf);
      if (n > 0) drained += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(protocol->resumes, 1);
    EXPECT_EQ(transport->get_write_buffer_size(), 0u);
    transport->close();
    co_await protocol->lost;
    ::close(pipe.read);
  }(p));
}

TEST(WritePipe, ReadingCallsThrowRuntimeError) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    auto factory = recorder();
    auto [transport, protocol] = co_await asyncio::connect_write_pipe(factory, pipe.write);
    EXPECT_THROW(transport->pause_reading(), asyncio::RuntimeError);
    EXPECT_FALSE(transport->is_reading());
    transport->abort();
    co_await protocol->lost;
  }(p));
  ::close(p.read);
}

TEST(PipeStreams, ALineWrittenToOneEndIsReadFromTheOther) {
  Pipe p;
  std::string line = run_loop([](Pipe pipe) -> Coro<std::string> {
    auto [reader, transport] = co_await asyncio::open_read_pipe(pipe.read);
    asyncio::StreamWriter writer = co_await asyncio::open_write_pipe(pipe.write);
    writer.write("through the pipe\nrest");
    co_await writer.drain();
    std::string l = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    std::string rest = co_await reader.read();
    EXPECT_EQ(rest, "rest");
    EXPECT_TRUE(reader.at_eof());
    co_return l;
  }(p));
  EXPECT_EQ(line, "through the pipe\n");
  EXPECT_FALSE(fd_is_open(p.read));
  EXPECT_FALSE(fd_is_open(p.write));
}

TEST(PipeStreams, DrainWaitsWhileThePipeIsFull) {
  Pipe p;
  run_loop([](Pipe pipe) -> Coro<void> {
    asyncio::StreamWriter writer = co_await asyncio::open_write_pipe(pipe.write);
    writer.write(std::string(1 << 20, 'q'));
    auto drain = asyncio::create_task(writer.drain());
    co_await asyncio::sleep(0.02);
    EXPECT_FALSE(drain.done());
    auto [reader, transport] = co_await asyncio::open_read_pipe(pipe.read);
    std::string got = co_await reader.readexactly(1 << 20);
    co_await drain;
    EXPECT_EQ(got.size(), 1u << 20);
  }(p));
}

TEST(PipeStreams, ChunksOfAWholePipeKeepTheirOrderWhileTheReaderLags) {
  // Each chunk is the pipe's whole size: after the transport writes one out of its buffer the
  // pipe is full, and the next write() buffers without trying (src/net/pipe_transport.hpp).
  constexpr int kChunks = 40;
  Pipe p;
  const std::size_t chunk = static_cast<std::size_t>(::fcntl(p.write, F_GETPIPE_SZ));
  std::string got = run_loop([](Pipe pipe, std::size_t size) -> Coro<std::string> {
    asyncio::StreamWriter writer = co_await asyncio::open_write_pipe(pipe.write);
    auto [reader, transport] = co_await asyncio::open_read_pipe(pipe.read);
    auto write_all = [](asyncio::StreamWriter w, std::size_t n) -> Coro<void> {
      for (int i = 0; i < kChunks; ++i) {
        w.write(std::string(n, static_cast<char>('a' + i % 26)));
        co_await w.drain();
      }
      w.close();
    };
    auto writing = asyncio::create_task(write_all(writer, size));
    std::string all;
    while (true) {
      std::string piece = co_await reader.read(4096);  // a slow reader: small reads, pauses
      if (piece.empty()) break;
      all += piece;
      if (all.size() % (size * 4) < 4096) co_await asyncio::sleep(0.001);
    }
    co_await writing;
    co_return all;
  }(p, chunk));
  ASSERT_EQ(got.size(), chunk * kChunks);
  for (int i = 0; i < kChunks; ++i) {
    std::size_t end = i + 1 < kChunks ? chunk * static_cast<std::size_t>(i + 1) : std::string::npos;
    ASSERT_EQ(got.find_first_not_of(static_cast<char>('a' + i % 26), chunk * static_cast<std::size_t>(i)), end)
        << "chunk " << i;
  }
}
