#include "protocol/messages.hpp"

#include <type_traits>

namespace tide::protocol {

std::string_view command_name(const Message& message) {
  return std::visit(
      [](const auto& m) -> std::string_view {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Hello>) return "HELLO";
        else if constexpr (std::is_same_v<T, Welcome>) return "WELCOME";
        else if constexpr (std::is_same_v<T, Report>) return "REPORT";
        else if constexpr (std::is_same_v<T, Heartbeat>) return "HEARTBEAT";
        else if constexpr (std::is_same_v<T, Drain>) return "DRAIN";
        else if constexpr (std::is_same_v<T, Undrain>) return "UNDRAIN";
        else if constexpr (std::is_same_v<T, HookRun>) return "HOOK_RUN";
        else if constexpr (std::is_same_v<T, HookResult>) return "HOOK_RESULT";
        else if constexpr (std::is_same_v<T, Shutdown>) return "SHUTDOWN";
        else if constexpr (std::is_same_v<T, Ack>) return "ACK";
        else if constexpr (std::is_same_v<T, Error>) return "ERROR";
        else {
          static_assert(std::is_same_v<T, Goodbye>);
          return "GOODBYE";
        }
      },
      message);
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view to_string(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::Http: return "http";
    case ProbeKind::Tcp: return "tcp";
    case ProbeKind::Exec: return "exec";
    case ProbeKind::Notify: return "notify";
  }
  return "?";
}

std::optional<ProbeKind> probe_kind_from_string(std::string_view name) {
  if (name == "http") return ProbeKind::Http;
  if (name == "tcp") return ProbeKind::Tcp;
  if (name == "exec") return ProbeKind::Exec;
  if (name == "notify") return ProbeKind::Notify;
  return std::nullopt;
}

std::optional<ErrorCode> error_code_from_uint(std::uint64_t code) {
  switch (code) {
    case 400: return ErrorCode::BadMessage;
    case 401: return ErrorCode::Unauthorized;
    case 404: return ErrorCode::UnknownInstance;
    case 410: return ErrorCode::UnknownSession;
    case 500: return ErrorCode::Internal;
    case 505: return ErrorCode::UnsupportedVersion;
    default: return std::nullopt;
  }
}

}  // namespace tide::protocol
