// Fixtures shared by the HAProxy integration tests: free loopback ports, a
// blocking HTTP/1.1 GET, tide-sample-app child processes, and running a libuv
// loop until a condition holds (bounded).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

namespace tide::haproxy::fixtures {

inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
};

// One blocking HTTP/1.1 request with "Connection: close" (test thread only).
inline HttpResult http_get(std::uint16_t port, const std::string& path) {
  HttpResult r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
    ::close(fd);
    return r;
  }
  std::string in;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (in.rfind("HTTP/1.", 0) == 0 && in.size() > 12) r.status = std::atoi(in.c_str() + 9);
  auto body = in.find("\r\n\r\n");
  if (body != std::string::npos) r.body = in.substr(body + 4);
  return r;
}

// A tide-sample-app child process on a free port, stopped with SIGTERM.
struct SampleApp {
  pid_t pid = -1;
  std::uint16_t port = 0;
  explicit SampleApp(const std::string& name, const std::vector<std::string>& extra = {}) {
    port = free_port();
    std::vector<std::string> args = {std::string(TIDE_BIN_DIR) + "/tide-sample-app",
                                     "--port",
                                     std::to_string(port),
                                     "--name",
                                     name,
                                     "--no-notify"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::freopen("/dev/null", "w", stdout);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Listening is the first thing the app does; wait for it, bounded.
    for (int i = 0; i < 200; ++i) {
      if (http_get(port, "/health").status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("tide-sample-app did not start");
  }
  ~SampleApp() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
  }
  SampleApp(const SampleApp&) = delete;
  SampleApp& operator=(const SampleApp&) = delete;
};

// Runs the loop until pred() or the deadline; returns pred(). A 5 ms timer
// keeps the loop waking up so that pred() is checked even when nothing happens.
template <typename Pred>
bool run_loop_until(uv_loop_t* loop, Pred pred, std::uint64_t timeout_ms) {
  uv_timer_t wake;
  uv_timer_init(loop, &wake);
  uv_timer_start(
      &wake, [](uv_timer_t*) {}, 5, 5);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return pred();
}

}  // namespace tide::haproxy::fixtures
