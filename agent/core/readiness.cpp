#include "agent/core/readiness.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace tide::agent {

ProbeState::ProbeState(std::uint32_t success_threshold, std::uint32_t failure_threshold,
                       bool initially_passing)
    : m_success_threshold(std::max<std::uint32_t>(1, success_threshold)),
      m_failure_threshold(std::max<std::uint32_t>(1, failure_threshold)),
      m_passing(initially_passing) {}

bool ProbeState::record(bool success, std::string message, std::uint32_t latency_ms) {
  const bool before = m_passing;
  m_latency_ms = latency_ms;
  m_message = std::move(message);
  if (success) {
    m_failures = 0;
    if (m_successes < m_success_threshold) ++m_successes;
    if (m_successes >= m_success_threshold) m_passing = true;
  } else {
    m_successes = 0;
    if (m_failures < m_failure_threshold) ++m_failures;
    // A probe that never passed fails at once: the threshold only protects a
    // passing probe against a single flaky attempt.
    if (m_failures >= m_failure_threshold) m_passing = false;
  }
  return before != m_passing;
}

Readiness::Readiness(std::vector<ProbeSpec> probes, bool use_notify)
    : m_specs(std::move(probes)), m_use_notify(use_notify) {
  m_states.reserve(m_specs.size());
  for (const auto& spec : m_specs) {
    // Health checks start passing: an agent that has not probed yet has no
    // evidence the instance is broken. Readiness starts failing: no evidence
    // it can serve.
    m_states.emplace_back(spec.success_threshold, spec.failure_threshold,
                          spec.role == SourceRole::Health);
  }
  recompute();
}

bool Readiness::record_probe(std::size_t index, bool success, std::string message,
                             std::uint32_t latency_ms) {
  assert(index < m_states.size());
  m_states.at(index).record(success, std::move(message), latency_ms);
  return recompute();
}

bool Readiness::apply_notify(const NotifyMessage& message) {
  if (message.ready) {
    m_notify_ready = *message.ready;
    if (m_notify_ready) m_stopping = false;
  }
  if (message.stopping) {
    m_stopping = true;
    m_notify_ready = false;
  }
  if (message.status) m_notify_status = *message.status;
  return recompute();
}

bool Readiness::drain() {
  m_draining = true;
  return recompute();
}

bool Readiness::undrain() {
  m_draining = false;
  return recompute();
}

bool Readiness::recompute() {
  Status next;
  next.draining = m_draining;
  next.stopping = m_stopping;

  std::string not_ready;
  std::string unhealthy;
  std::size_t readiness_sources = 0;
  for (std::size_t i = 0; i < m_specs.size(); ++i) {
    const auto& spec = m_specs[i];
    const auto& state = m_states[i];
    switch (spec.role) {
      case SourceRole::Readiness:
        ++readiness_sources;
        if (!state.passing() && not_ready.empty()) {
          not_ready = "probe " + spec.name + ": " + state.message();
        }
        break;
      case SourceRole::Health:
        if (!state.passing() && unhealthy.empty()) {
          unhealthy = "check " + spec.name + ": " + state.message();
        }
        break;
    }
  }
  if (m_use_notify) {
    ++readiness_sources;
    if (m_stopping && not_ready.empty()) {
      not_ready = "application said STOPPING=1";
    } else if (!m_notify_ready && not_ready.empty()) {
      not_ready = "application has not said READY=1";
    }
  }
  if (m_draining) not_ready = "draining";

  next.ready = not_ready.empty();
  next.ready_reason = next.ready ? (readiness_sources == 0 ? "no readiness source configured"
                                                           : "all readiness sources pass")
                                 : not_ready;
  next.healthy = unhealthy.empty();
  next.health_reason = unhealthy;
  if (next.ready_reason.size() > protocol::kMaxTextLength) next.ready_reason.resize(protocol::kMaxTextLength);
  if (next.health_reason.size() > protocol::kMaxTextLength) next.health_reason.resize(protocol::kMaxTextLength);

  const bool changed = next.ready != m_status.ready || next.healthy != m_status.healthy ||
                       next.draining != m_status.draining;
  m_status = std::move(next);
  return changed;
}

std::vector<protocol::ProbeResult> Readiness::probe_results() const {
  std::vector<protocol::ProbeResult> out;
  out.reserve(m_specs.size() + 1);
  for (std::size_t i = 0; i < m_specs.size() && out.size() < protocol::kMaxProbes; ++i) {
    protocol::ProbeResult r;
    r.name = m_specs[i].name;
    r.kind = m_specs[i].kind;
    r.passing = m_states[i].passing();
    r.message = m_states[i].message().substr(0, protocol::kMaxTextLength);
    r.latency_ms = m_states[i].latency_ms();
    out.push_back(std::move(r));
  }
  if (m_use_notify && out.size() < protocol::kMaxProbes) {
    protocol::ProbeResult r;
    r.name = "notify";
    r.kind = protocol::ProbeKind::Notify;
    r.passing = m_notify_ready && !m_stopping;
    r.message = m_notify_status.substr(0, protocol::kMaxTextLength);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace tide::agent
