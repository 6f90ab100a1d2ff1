// The agent's readiness and health state machine (pure logic, no I/O).
//
// Each configured source is either a probe (HTTP, TCP, exec) whose attempts
// are fed in with record_probe(), or the sd_notify socket whose datagrams are
// fed in with apply_notify(). A probe flips to passing after
// success_threshold consecutive successes and to failing after
// failure_threshold consecutive failures, as Kubernetes probes do. The
// instance is ready when every readiness source passes and it is not
// draining; it is healthy when every health check passes (a not-ready
// instance is not unhealthy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/notify.hpp"
#include "protocol/messages.hpp"

namespace tide::agent {

// What a source contributes to.
enum class SourceRole : std::uint8_t { Readiness, Health };

struct ProbeSpec {
  std::string name;
  protocol::ProbeKind kind = protocol::ProbeKind::Http;
  SourceRole role = SourceRole::Readiness;
  std::uint32_t success_threshold = 1;  // consecutive successes to pass, >= 1
  std::uint32_t failure_threshold = 3;  // consecutive failures to fail, >= 1
};

// One probe's threshold logic. Starts failing ("not probed yet"), as a
// Kubernetes readiness probe does.
class ProbeState {
 public:
  explicit ProbeState(std::uint32_t success_threshold, std::uint32_t failure_threshold,
                      bool initially_passing = false);

  // Records one attempt. Returns true when passing() changed.
  bool record(bool success, std::string message, std::uint32_t latency_ms);

  [[nodiscard]] bool passing() const { return m_passing; }
  [[nodiscard]] const std::string& message() const { return m_message; }
  [[nodiscard]] std::uint32_t latency_ms() const { return m_latency_ms; }
  [[nodiscard]] std::uint32_t consecutive_successes() const { return m_successes; }
  [[nodiscard]] std::uint32_t consecutive_failures() const { return m_failures; }

 private:
  std::uint32_t m_success_threshold;
  std::uint32_t m_failure_threshold;
  bool m_passing;
  std::uint32_t m_successes = 0;
  std::uint32_t m_failures = 0;
  std::string m_message = "not probed yet";
  std::uint32_t m_latency_ms = 0;
};

// The combined view the agent reports.
struct Status {
  bool ready = false;
  std::string ready_reason;
  bool healthy = true;
  std::string health_reason;
  bool draining = false;
  bool stopping = false;  // the application said STOPPING=1
  friend bool operator==(const Status&, const Status&) = default;
};

class Readiness {
 public:
  // use_notify: the notify socket is a readiness source, so READY=1 is
  // required (and STOPPING=1 or READY=0 takes the instance out).
  Readiness(std::vector<ProbeSpec> probes, bool use_notify);

  // Each returns true when the reported Status (ready, healthy, draining)
  // changed, i.e. when a REPORT must go out at once.
  bool record_probe(std::size_t index, bool success, std::string message,
                    std::uint32_t latency_ms);
  bool apply_notify(const NotifyMessage& message);
  bool drain();
  bool undrain();

  [[nodiscard]] const Status& status() const { return m_status; }
  [[nodiscard]] std::size_t probe_count() const { return m_specs.size(); }
  [[nodiscard]] const ProbeSpec& spec(std::size_t index) const { return m_specs.at(index); }
  [[nodiscard]] const ProbeState& probe(std::size_t index) const { return m_states.at(index); }
  [[nodiscard]] bool notify_ready() const { return m_notify_ready; }
  [[nodiscard]] const std::string& notify_status() const { return m_notify_status; }

  // Every source as the protocol reports it (probes, then the notify source).
  [[nodiscard]] std::vector<protocol::ProbeResult> probe_results() const;

 private:
  bool recompute();

  std::vector<ProbeSpec> m_specs;
  std::vector<ProbeState> m_states;
  bool m_use_notify;
  bool m_notify_ready = false;
  bool m_stopping = false;
  std::string m_notify_status;
  bool m_draining = false;
  Status m_status;
};

}  // namespace tide::agent
