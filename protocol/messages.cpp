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

}  // namespace tide::protocol
