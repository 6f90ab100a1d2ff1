#include "coordinator/io/provider/provider.hpp"

namespace tide::provider {

std::string_view to_string(InstanceState state) {
  switch (state) {
    case InstanceState::Pending: return "pending";
    case InstanceState::Running: return "running";
    case InstanceState::Stopping: return "stopping";
    case InstanceState::Gone: return "gone";
  }
  return "gone";
}

std::optional<InstanceState> parse_instance_state(std::string_view text) {
  for (auto s : {InstanceState::Pending, InstanceState::Running, InstanceState::Stopping,
                 InstanceState::Gone}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::string check_identifier(std::string_view what, std::string_view value) {
  if (value.empty()) return std::string(what) + " is empty";
  if (value.size() > 128) return std::string(what) + " is longer than 128 bytes";
  if (value.front() == '.') return std::string(what) + " must not start with '.'";
  for (const char c : value) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return std::string(what) + " '" + std::string(value) +
             "' has a character outside [A-Za-z0-9._:-]";
    }
  }
  return {};
}

}  // namespace tide::provider
