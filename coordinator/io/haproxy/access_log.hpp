// HAProxy's access log for one frontend, taken by the coordinator: HAProxy
// sends each HTTP log line as a datagram (`log <socket> format raw`) to a unix
// socket this object binds, and it writes the line to the coordinator's log
// (marked "haproxy access <frontend>:") or appends it to a file. reopen()
// starts a new file after a log rotation (SIGHUP).
//
// Datagrams are dropped, not queued, when the coordinator cannot keep up or
// is down: HAProxy never waits for its log.
#pragma once

#include <uv.h>

#include <cstdio>
#include <string>

#include <tl/expected.hpp>

namespace tide::haproxy {

class AccessLogSink {
 public:
  // `file` empty: the coordinator's log.
  AccessLogSink(uv_loop_t* loop, std::string frontend, std::string socket_path, std::string file);
  ~AccessLogSink();
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  // Binds the socket (replacing a stale one) and opens the file.
  [[nodiscard]] tl::expected<void, std::string> start();
  // Closes and reopens the file (after a rotation). Does nothing for the log.
  [[nodiscard]] tl::expected<void, std::string> reopen();
  [[nodiscard]] const std::string& file() const { return m_file; }

 private:
  void on_readable();

  uv_loop_t* m_loop;
  std::string m_frontend;
  std::string m_socket_path;
  std::string m_file;
  int m_fd = -1;
  uv_poll_t* m_poll = nullptr;
  std::FILE* m_out = nullptr;
};

}  // namespace tide::haproxy
