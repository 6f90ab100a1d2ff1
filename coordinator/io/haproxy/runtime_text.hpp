// Parsers for the text HAProxy's runtime API returns, and the few constants
// that give its numbers a meaning. Pure functions over strings: no I/O, so the
// unit tests feed them captured output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace tide::haproxy {

// srv_admin_state bits (HAProxy 2.6 include/haproxy/server-t.h).
inline constexpr std::uint32_t kAdminForcedMaint = 0x01;
inline constexpr std::uint32_t kAdminInheritedMaint = 0x02;
inline constexpr std::uint32_t kAdminConfigMaint = 0x04;  // "disabled" in the config; a marker only
inline constexpr std::uint32_t kAdminForcedDrain = 0x08;
inline constexpr std::uint32_t kAdminInheritedDrain = 0x10;
inline constexpr std::uint32_t kAdminResolutionMaint = 0x20;
inline constexpr std::uint32_t kAdminMaintMask = kAdminForcedMaint | kAdminInheritedMaint | kAdminResolutionMaint;
inline constexpr std::uint32_t kAdminDrainMask = kAdminForcedDrain | kAdminInheritedDrain;

// srv_op_state values.
inline constexpr std::uint32_t kOpStopped = 0;
inline constexpr std::uint32_t kOpStarting = 1;
inline constexpr std::uint32_t kOpRunning = 2;
inline constexpr std::uint32_t kOpStopping = 3;

// One row of `show servers state <backend>`.
struct ServerState {
  std::string backend;
  std::uint32_t server_id = 0;
  std::string server;   // e.g. "s7"
  std::string address;  // IP literal as HAProxy prints it
  std::uint16_t port = 0;
  std::uint32_t op_state = kOpStopped;
  std::uint32_t admin_state = 0;

  [[nodiscard]] bool in_maint() const { return (admin_state & kAdminMaintMask) != 0; }
  [[nodiscard]] bool draining() const { return (admin_state & kAdminDrainMask) != 0; }
  // Takes new traffic: neither in maintenance nor draining.
  [[nodiscard]] bool in_rotation() const { return !in_maint() && !draining(); }
  friend bool operator==(const ServerState&, const ServerState&) = default;
};

// Parses the whole answer of `show servers state [<backend>]` (format version
// 1). Columns are found by their names in the "#" header line, not by index.
[[nodiscard]] tl::expected<std::vector<ServerState>, std::string> parse_servers_state(std::string_view text);

// The fields of one `show stat` CSV row that tide uses (HAProxy 2.6 names in
// the comments). Counters are cumulative since HAProxy's worker started (or
// since `clear counters`); they restart from zero after a reload or restart.
struct StatRow {
  std::string proxy;   // pxname
  std::string server;  // svname (FRONTEND / BACKEND for the aggregate rows)
  std::uint64_t qcur = 0;  // requests queued for this server now
  std::uint64_t scur = 0;  // sessions open now
  std::string status;  // "UP", "DOWN", "MAINT", "DRAIN", "no check", ...
  std::string addr;    // "ip:port" for servers, empty otherwise
  std::uint64_t stot = 0;      // sessions, cumulative
  std::uint64_t req_tot = 0;   // HTTP requests, cumulative (empty, so 0, in TCP mode)
  std::uint64_t rate = 0;      // sessions per second over the last second
  std::uint64_t hrsp_2xx = 0;  // HTTP responses by class, cumulative
  std::uint64_t hrsp_4xx = 0;
  std::uint64_t hrsp_5xx = 0;
  std::uint64_t econ = 0;      // failed connection attempts to the server, cumulative
  std::uint64_t eresp = 0;     // responses aborted or failed on the server side, cumulative
  std::uint64_t wretr = 0;     // connection retries, cumulative
  std::uint64_t wredis = 0;    // requests redispatched to another server, cumulative
  // Averages over the last 1,024 requests, in milliseconds: time queued, to
  // connect, to the response headers, and the whole request.
  std::uint64_t qtime_ms = 0;  // qtime
  std::uint64_t ctime_ms = 0;  // ctime
  std::uint64_t rtime_ms = 0;  // rtime
  std::uint64_t ttime_ms = 0;  // ttime
  friend bool operator==(const StatRow&, const StatRow&) = default;
};

// Parses `show stat` CSV (the "# pxname,svname,..." header line first).
// Fields are looked up by header name: pxname, svname, qcur, scur and status
// must be there; any other field that is absent from the header or empty in a
// row reads as 0. A row shorter than the header's named fields, or a field
// that is not a non-negative integer, is an error naming the row and field.
[[nodiscard]] tl::expected<std::vector<StatRow>, std::string> parse_show_stat(std::string_view text);

// True when an answer to a state-changing command means it failed. HAProxy
// answers those with nothing on success, or with a sentence naming the change
// for `set server addr`.
[[nodiscard]] bool is_error_answer(std::string_view command, std::string_view answer);

}  // namespace tide::haproxy
