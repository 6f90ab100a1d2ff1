#include "coordinator/io/provider/provider.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

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

tl::expected<std::map<std::string, std::string>, ProviderError> read_env_files(
    const std::map<std::string, std::string>& env_files) {
  std::map<std::string, std::string> values;
  for (const auto& [name, path] : env_files) {
    const auto fail = [&name = name, &path = path](const std::string& why) {
      return tl::unexpected(ProviderError{"env_files." + name + ": " + path + ": " + why, false});
    };
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(std::string("cannot read: ") + std::strerror(errno));
    std::string value;
    value.resize(kMaxEnvFileBytes + 1);
    in.read(value.data(), static_cast<std::streamsize>(value.size()));
    if (in.bad()) return fail(std::string("cannot read: ") + std::strerror(errno));
    value.resize(static_cast<std::size_t>(in.gcount()));
    if (value.size() > kMaxEnvFileBytes) return fail("larger than " + std::to_string(kMaxEnvFileBytes) + " bytes");
    if (value.find('\0') != std::string::npos) return fail("holds a NUL byte");
    // Files written by `echo` or an editor end with a newline that is not
    // part of the secret.
    if (!value.empty() && value.back() == '\n') value.pop_back();
    values.emplace(name, std::move(value));
  }
  return values;
}

}  // namespace tide::provider
