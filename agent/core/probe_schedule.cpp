#include "agent/core/probe_schedule.hpp"

#include <algorithm>

namespace tide::agent {

ProbeSchedule::ProbeSchedule(ProbeTiming timing, std::uint64_t start_ms)
    : m_timing(timing), m_next_ms(start_ms + timing.initial_delay_ms) {
  m_timing.period_ms = std::max<std::uint32_t>(1, m_timing.period_ms);
  // A startup period longer than the period would make a booting instance
  // wait longer than a running one; it is cut to the period.
  m_timing.startup_period_ms =
      std::clamp<std::uint32_t>(m_timing.startup_period_ms, 1, m_timing.period_ms);
}

std::uint32_t ProbeSchedule::current_period_ms() const {
  return m_seen_passing ? m_timing.period_ms : m_timing.startup_period_ms;
}

bool ProbeSchedule::due(std::uint64_t now_ms) const {
  return !m_in_flight && now_ms >= m_next_ms;
}

void ProbeSchedule::attempt_started(std::uint64_t now_ms) {
  m_in_flight = true;
  m_last_start_ms = now_ms;
}

void ProbeSchedule::attempt_finished(std::uint64_t now_ms, bool passing) {
  m_in_flight = false;
  if (passing) m_seen_passing = true;
  const std::uint64_t period = current_period_ms();
  // The first grid slot after the start that is not already past.
  std::uint64_t next = m_last_start_ms + period;
  if (next < now_ms) next += (now_ms - next + period - 1) / period * period;
  m_next_ms = next;
}

}  // namespace tide::agent
