// Per-instance traffic figures from HAProxy's own per-server statistics: what
// a rollout's canary compares between versions (5xx share, response time,
// connection errors) and what request-aware scaling reads (requests per
// second, queue, response time). Pure: it maps parsed `show stat` rows onto
// the instances that hold the backends' slots; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/io/haproxy/runtime_text.hpp"

namespace tide::haproxy {

// One slot's figures, named by the instance that holds it. Counters are
// HAProxy's cumulative values for the slot: a consumer takes the difference
// between two samples of the same instance. They restart from zero when
// HAProxy reloads or restarts (a step down is a reset, not negative traffic),
// and a slot handed to a new instance keeps counting from the figures of the
// instance that held it before, so an instance's first sample is only a
// baseline. The mean times likewise cover the slot's last 1,024 requests,
// which may include some served by its previous instance.
struct ServerTraffic {
  std::string backend;
  std::string instance_id;
  std::uint64_t sessions_total = 0;     // stot
  std::uint64_t requests_total = 0;     // req_tot (0 in TCP mode)
  std::uint64_t responses_5xx = 0;      // hrsp_5xx
  std::uint64_t connection_errors = 0;  // econ
  std::uint64_t response_errors = 0;    // eresp
  std::uint64_t queue = 0;              // qcur: requests waiting for this server now
  std::uint64_t current_sessions = 0;   // scur
  std::uint64_t session_rate = 0;       // rate: sessions per second over the last second
  // Averages over the last 1,024 requests, in milliseconds.
  double mean_response_ms = 0.0;  // rtime: to the response headers
  double mean_queue_ms = 0.0;     // qtime
  double mean_total_ms = 0.0;     // ttime: the whole request
  friend bool operator==(const ServerTraffic&, const ServerTraffic&) = default;
};

// The instances that hold slots in one backend.
struct BackendMembers {
  std::string backend;
  std::string slot_prefix = "s";
  std::map<std::string, std::uint32_t> slots;  // instance id → slot (1-based)
};

// One ServerTraffic per instance that holds a slot, in the order of
// `backends` and then by slot number. Slots without an instance are left out,
// and so is an instance whose slot has no row in `rows` (an HAProxy whose
// configuration lacks that backend or slot has no figures for it).
[[nodiscard]] std::vector<ServerTraffic> member_traffic(
    const std::vector<StatRow>& rows, const std::vector<BackendMembers>& backends);

}  // namespace tide::haproxy
