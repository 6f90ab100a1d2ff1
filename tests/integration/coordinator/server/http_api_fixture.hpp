// A real HttpApi on its own libuv loop thread, and raw-socket clients that do
// what tidectl, a careless client and an attacker do: well-formed requests,
// pipelined requests, bad framing, connections that send their headers one
// slow line at a time or nothing at all. Shared by http_api_tests and
// tests/bench/coordinator/bench_api_slowloris. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <uv.h>

#include "coordinator/io/server/http_api.hpp"

namespace tide::coordinator::test {

// An HttpApi with these routes: GET /healthz (public), POST /v1/echo (echoes
// the body), GET /v1/slow (the loop takes `slow_ms` to answer), and for the
// console: POST /v1/publish {event, data, times} (HttpApi::publish on the
// loop), POST /v1/login-code {ttl_ms} and GET /v1/streams.
class HttpApiFixture {
 public:
  explicit HttpApiFixture(HttpApiConfig config = {}) {
    config.port = 0;
    std::promise<std::string> started;
    auto ready = started.get_future();
    m_thread = std::thread([this, config, &started] {
      uv_loop_init(&m_loop);
      uv_async_init(&m_loop, &m_stop, [](uv_async_t* async) {
        auto* self = static_cast<HttpApiFixture*>(async->data);
        self->m_api->stop();
        uv_close(reinterpret_cast<uv_handle_t*>(&self->m_stop), nullptr);
        uv_stop(&self->m_loop);
      });
      m_stop.data = this;
      m_api = std::make_unique<HttpApi>(&m_loop, config);
      m_api->public_route("GET", "/healthz", [](const ApiRequest&) {
        ApiResponse r;
        r.body = {{"ok", true}};
        return r;
      });
      m_api->route("POST", "/v1/echo", [](const ApiRequest& request) {
        ApiResponse r;
        r.body = {{"body", request.body.value_or(nullptr)}, {"params", request.params}};
        return r;
      });
      m_api->route("GET", "/v1/slow", [this](const ApiRequest&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));
        return ApiResponse{};
      });
      // For the console's tests: what the coordinator's loop does.
      m_api->route("POST", "/v1/publish", [this](const ApiRequest& request) {
        const auto& body = request.body.value();
        for (int k = 0; k < body.value("times", 1); ++k) {
          m_api->publish(body.value("event", "change"), body.value("data", "{}"));
        }
        return ApiResponse{};
      });
      m_api->route("POST", "/v1/login-code", [this](const ApiRequest& request) {
        ApiResponse r;
        const auto ttl = std::chrono::milliseconds(request.body.value().value("ttl_ms", 600'000));
        r.body = {{"code", m_api->issue_login_code(ttl)}};
        return r;
      });
      m_api->route("GET", "/v1/streams", [this](const ApiRequest&) {
        ApiResponse r;
        r.body = {{"streams", m_api->event_streams()}};
        return r;
      });
      auto port = m_api->start();
      if (port) m_port = *port;
      started.set_value(port ? std::string() : port.error());
      uv_run(&m_loop, UV_RUN_DEFAULT);
      m_api.reset();  // closes its async handle
      for (int i = 0; i < 100 && uv_run(&m_loop, UV_RUN_NOWAIT) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      (void)uv_loop_close(&m_loop);
    });
    if (ready.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      throw std::runtime_error("the API did not start within 20 s");
    }
    m_start_error = ready.get();
  }

  ~HttpApiFixture() {
    uv_async_send(&m_stop);
    m_thread.join();
  }

  HttpApiFixture(const HttpApiFixture&) = delete;
  HttpApiFixture& operator=(const HttpApiFixture&) = delete;

  [[nodiscard]] const std::string& start_error() const { return m_start_error; }
  [[nodiscard]] std::uint16_t port() const { return m_port; }

  int slow_ms = 0;

 private:
  uv_loop_t m_loop{};
  uv_async_t m_stop{};
  std::unique_ptr<HttpApi> m_api;
  std::thread m_thread;
  std::string m_start_error;
  std::uint16_t m_port = 0;
};

// A blocking TCP client connection to 127.0.0.1:port (-1 when refused).
inline int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until `done(text)` holds, the peer closes, or `timeout` passes.
template <class Done>
std::string read_until(int fd, std::chrono::milliseconds timeout, Done done) {
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(text)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

// How many complete responses (status line + headers + Content-Length body)
// `text` holds.
inline int complete_responses(const std::string& text) {
  int count = 0;
  std::size_t at = 0;
  while (true) {
    const auto end = text.find("\r\n\r\n", at);
    if (end == std::string::npos) return count;
    const std::string head = text.substr(at, end - at);
    std::size_t length = 0;
    for (const std::string key : {"Content-Length: ", "content-length: "}) {
      if (const auto k = head.find(key); k != std::string::npos) length = std::stoul(head.substr(k + key.size()));
    }
    if (text.size() < end + 4 + length) return count;
    ++count;
    at = end + 4 + length;
  }
}

// The status code of the first response in `text`, 0 when there is none.
inline int first_status(const std::string& text) {
  if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12) return 0;
  return std::stoi(text.substr(9, 3));
}

// One whole request on a fresh connection; the first response's text.
inline std::string exchange(std::uint16_t port, const std::string& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  std::string answer;
  if (send_all(fd, request)) {
    answer = read_until(fd, timeout, [](const std::string& t) { return complete_responses(t) >= 1; });
  }
  ::close(fd);
  return answer;
}

}  // namespace tide::coordinator::test
