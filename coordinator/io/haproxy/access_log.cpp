#include "coordinator/io/haproxy/access_log.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

namespace tide::haproxy {

AccessLogSink::AccessLogSink(uv_loop_t* loop, std::string frontend, std::string socket_path, std::string file)
    : m_loop(loop), m_frontend(std::move(frontend)), m_socket_path(std::move(socket_path)), m_file(std::move(file)) {}

AccessLogSink::~AccessLogSink() {
  if (m_poll != nullptr) {
    uv_poll_stop(m_poll);
    m_poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(m_poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  if (m_fd >= 0) {
    ::close(m_fd);
    ::unlink(m_socket_path.c_str());
  }
  if (m_out != nullptr) std::fclose(m_out);
}

tl::expected<void, std::string> AccessLogSink::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (m_socket_path.size() >= sizeof addr.sun_path) {
    return tl::make_unexpected("access log socket path too long: " + m_socket_path);
  }
  std::memcpy(addr.sun_path, m_socket_path.c_str(), m_socket_path.size() + 1);
  if (auto opened = reopen(); !opened) return opened;
  m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m_fd < 0) return tl::make_unexpected(std::string("access log socket: ") + std::strerror(errno));
  ::unlink(m_socket_path.c_str());  // left by an earlier coordinator
  if (::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string error = std::strerror(errno);
    ::close(m_fd);
    m_fd = -1;
    return tl::make_unexpected("access log socket " + m_socket_path + ": " + error);
  }
  ::chmod(m_socket_path.c_str(), 0600);
  // Room for bursts of log lines while the loop is busy.
  const int buffer = 4 * 1024 * 1024;
  (void)::setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  m_poll = new uv_poll_t;
  uv_poll_init(m_loop, m_poll, m_fd);
  m_poll->data = this;
  uv_poll_start(m_poll, UV_READABLE, [](uv_poll_t* handle, int status, int) {
    auto* self = static_cast<AccessLogSink*>(handle->data);
    if (self != nullptr && status == 0) self->on_readable();
  });
  return {};
}

tl::expected<void, std::string> AccessLogSink::reopen() {
  if (m_file.empty()) return {};
  std::FILE* out = std::fopen(m_file.c_str(), "a");
  if (out == nullptr) return tl::make_unexpected("access log " + m_file + ": " + std::strerror(errno));
  if (m_out != nullptr) std::fclose(m_out);
  m_out = out;
  return {};
}

void AccessLogSink::on_readable() {
  char buffer[8192];
  // A bounded batch per wake-up, so a flood of log lines cannot starve the loop.
  for (int i = 0; i < 256; ++i) {
    const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    std::string_view line(buffer, static_cast<std::size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\0')) line.remove_suffix(1);
    if (m_out != nullptr) {
      std::fwrite(line.data(), 1, line.size(), m_out);
      std::fputc('\n', m_out);
    } else {
      spdlog::info("haproxy access {}: {}", m_frontend, line);
    }
  }
  if (m_out != nullptr) std::fflush(m_out);
}

}  // namespace tide::haproxy
