// SPDX-License-Identifier: MIT
// The floor of the process benchmark (bench/run_process.sh): the same two workloads in plain C,
// no event loop, no allocation per process, the fewest system calls that do the job.
//
//   process_c spawn N       N runs of /bin/true, 50 at a time: posix_spawn 50, then
//                           waitpid(-1) and posix_spawn the next as each one ends
//   process_c pipe BYTES    BYTES through `cat`: poll() on our ends of its stdin and stdout,
//                           write 64 KiB chunks to one, read 64 KiB chunks from the other
//
// Prints `RESULT spawn procs_per_s X` / `RESULT pipe mb_per_s X` (MB = 10^6 bytes), as the
// other peers do, and the CPU time this process spent (children not counted: theirs is the same
// for every peer): `RESULT spawn cpu_us_per_proc X` / `RESULT pipe mb_per_cpu_s X`.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

enum { kConcurrency = 50, kChunk = 64 * 1024 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {  // this process's CPU time (user + system), all threads
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char* what, int err) {
  fprintf(stderr, "process_c: %s: %s\n", what, strerror(err));
  exit(1);
}

static void spawn_true(void) {
  static char* const argv[] = {"/bin/true", NULL};
  pid_t pid;
  int err = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
  if (err) die("posix_spawn", err);
}

static void reap_one(void) {
  int status;
  pid_t r;
  while ((r = waitpid(-1, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r < 0) die("waitpid", errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("/bin/true failed", 0);
}

static void bench_spawn(long n) {
  double start = now_s(), cpu_start = cpu_s();
  long started = 0;
  for (; started < n && started < kConcurrency; ++started) spawn_true();
  for (long ended = 0; ended < n; ++ended) {
    reap_one();
    if (started < n) {
      spawn_true();
      ++started;
    }
  }
  double elapsed = now_s() - start, cpu = cpu_s() - cpu_start;
  printf("RESULT spawn procs_per_s %.6g\n", (double)n / elapsed);
  printf("RESULT spawn cpu_us_per_proc %.6g\n", cpu * 1e6 / (double)n);
}

static void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl", errno);
}

static void bench_pipe(long long bytes) {
  int in[2], out[2];  // in: our write end -> cat's stdin; out: cat's stdout -> our read end
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) die("pipe2", errno);
  static char wbuf[kChunk], rbuf[kChunk];
  memset(wbuf, 'x', sizeof wbuf);

  double start = now_s(), cpu_start = cpu_s();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  static char* const argv[] = {"cat", NULL};
  pid_t pid;
  int err = posix_spawnp(&pid, "cat", &actions, NULL, argv, environ);
  if (err) die("posix_spawnp cat", err);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  int wfd = in[1], rfd = out[0];
  set_nonblocking(wfd);
  set_nonblocking(rfd);

  long long to_write = bytes, received = 0;
  for (;;) {
    struct pollfd fds[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
    int nfds = wfd >= 0 ? 2 : 1;
    if (poll(fds, (nfds_t)nfds, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll", errno);
    }
    if (nfds == 2 && (fds[1].revents & (POLLOUT | POLLERR))) {
      size_t want = to_write < kChunk ? (size_t)to_write : kChunk;
      ssize_t w = write(wfd, wbuf, want);
      if (w < 0 && errno != EAGAIN) die("write", errno);
      if (w > 0) to_write -= w;
      if (to_write == 0) {
        close(wfd);  // cat sees EOF once it has read everything
        wfd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(rfd, rbuf, sizeof rbuf);
      if (r < 0 && errno != EAGAIN) die("read", errno);
      if (r == 0) break;
      if (r > 0) received += r;
    }
  }
  close(rfd);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double elapsed = now_s() - start, cpu = cpu_s() - cpu_start;
  if (received != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("cat lost data or failed", 0);
  printf("RESULT pipe mb_per_s %.6g\n", (double)bytes / 1e6 / elapsed);
  printf("RESULT pipe mb_per_cpu_s %.6g\n", (double)bytes / 1e6 / cpu);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s spawn N | pipe BYTES\n", argv[0]);
    return 2;
  }
  long long n = atoll(argv[2]);
  if (strcmp(argv[1], "spawn") == 0)
    bench_spawn((long)n);
  else if (strcmp(argv[1], "pipe") == 0)
    bench_pipe(n);
  else
    return 2;
  return 0;
}
