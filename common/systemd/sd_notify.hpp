#pragma once
// The sd_notify protocol without libsystemd: one datagram to the AF_UNIX
// socket systemd names in $NOTIFY_SOCKET (Type=notify services, the watchdog).
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace tide::systemd {

// Sends `state` ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...") to the
// socket `socket_path` names: a file system path, or an abstract socket when
// it starts with '@'. An empty path means nobody listens (not started by
// systemd as a notify service) and succeeds without sending anything. The
// error names the socket and the reason.
[[nodiscard]] tl::expected<void, std::string> notify(std::string_view socket_path, std::string_view state);

// notify() to $NOTIFY_SOCKET, the socket systemd passes to a Type=notify
// service; nothing when the variable is unset or empty.
[[nodiscard]] tl::expected<void, std::string> notify(std::string_view state);

}  // namespace tide::systemd
