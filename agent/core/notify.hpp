// Parsing of sd_notify datagrams (pure logic).
//
// A datagram is newline-separated KEY=VALUE assignments, as systemd's
// sd_notify(3) sends them. tide reads READY=1, STOPPING=1, STATUS=...,
// WATCHDOG=1 and its own extensions READY=0 (the application is no longer
// ready) and METRIC=name=value (a custom metric). Unknown keys and malformed
// lines are skipped and counted, never fatal.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tide::agent {

inline constexpr std::size_t kMaxNotifyDatagram = 4096;

struct NotifyMessage {
  std::optional<bool> ready;          // READY=1 / READY=0
  bool stopping = false;              // STOPPING=1
  std::optional<std::string> status;  // STATUS=...
  bool watchdog = false;              // WATCHDOG=1
  std::vector<std::pair<std::string, double>> metrics;  // METRIC=name=value
  std::size_t ignored = 0;            // lines not understood
};

// Never fails: garbage yields a message with nothing set and ignored > 0.
[[nodiscard]] NotifyMessage parse_notify(std::string_view datagram);

}  // namespace tide::agent
