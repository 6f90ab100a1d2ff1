#include "common/systemd/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tide::systemd {

tl::expected<void, std::string> notify(std::string_view socket_path, std::string_view state) {
  if (socket_path.empty()) return {};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t n = socket_path.size();
  if (n >= sizeof addr.sun_path) {
    return tl::make_unexpected("NOTIFY_SOCKET " + std::string(socket_path) + ": path too long");
  }
  std::memcpy(addr.sun_path, socket_path.data(), n);
  const bool abstract = socket_path.front() == '@';
  if (abstract) addr.sun_path[0] = '\0';
  // An abstract name is exactly its bytes; a path is NUL-terminated.
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (abstract ? 0 : 1));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::make_unexpected(std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno));
  const ssize_t sent =
      ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  if (sent < 0) return tl::make_unexpected("NOTIFY_SOCKET " + std::string(socket_path) + ": " + std::strerror(err));
  return {};
}

tl::expected<void, std::string> notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  return notify(path == nullptr ? std::string_view{} : std::string_view{path}, state);
}

}  // namespace tide::systemd
