#include "agent/core/notify.hpp"

#include <charconv>
#include <cmath>

#include "protocol/messages.hpp"

namespace tide::agent {
namespace {

bool valid_metric_name(std::string_view name) {
  if (name.empty() || name.size() > protocol::kMaxIdLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::optional<double> parse_double(std::string_view text) {
  double value = 0.0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

NotifyMessage parse_notify(std::string_view datagram) {
  NotifyMessage out;
  if (datagram.size() > kMaxNotifyDatagram) {
    out.ignored = 1;
    return out;
  }
  while (!datagram.empty()) {
    const auto nl = datagram.find('\n');
    std::string_view line = datagram.substr(0, nl);
    datagram = nl == std::string_view::npos ? std::string_view{} : datagram.substr(nl + 1);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      ++out.ignored;
      continue;
    }
    const auto key = line.substr(0, eq);
    const auto value = line.substr(eq + 1);
    if (key == "READY" && (value == "1" || value == "0")) {
      out.ready = value == "1";
    } else if (key == "STOPPING" && value == "1") {
      out.stopping = true;
    } else if (key == "STATUS") {
      out.status = std::string(value.substr(0, protocol::kMaxTextLength));
    } else if (key == "WATCHDOG" && value == "1") {
      out.watchdog = true;
    } else if (key == "METRIC") {
      const auto eq2 = value.find('=');
      if (eq2 == std::string_view::npos) {
        ++out.ignored;
        continue;
      }
      const auto name = value.substr(0, eq2);
      const auto number = parse_double(value.substr(eq2 + 1));
      if (!valid_metric_name(name) || !number) {
        ++out.ignored;
        continue;
      }
      out.metrics.emplace_back(std::string(name), *number);
    } else {
      // MAINPID=, ERRNO=, FDSTORE= and friends mean nothing to tide.
      ++out.ignored;
    }
  }
  return out;
}

}  // namespace tide::agent
