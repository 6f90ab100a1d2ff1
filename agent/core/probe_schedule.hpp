// When a probe's next attempt starts (pure logic, no I/O, time passed in).
//
// A probe runs at startup_period_ms until an attempt first leaves it passing,
// then at period_ms for the rest of the agent's life. For a readiness probe
// this means: while the application boots the agent looks often, so the
// instance enters the load balancer's rotation soon after the application is
// ready; once it has been seen ready, the agent looks at the normal period.
//
// Attempts start on a grid: the next one is period after the previous start.
// One attempt is in flight at a time; an attempt that outlasts its slot (a
// slow or hanging target) moves the next start to the first grid slot at or
// after its end, so attempts never stack and a hanging target is not probed
// back to back.
#pragma once

#include <cstdint>

namespace tide::agent {

struct ProbeTiming {
  std::uint32_t initial_delay_ms = 0;      // before the first attempt
  std::uint32_t period_ms = 1000;          // start to start, once passing was seen; >= 1
  std::uint32_t startup_period_ms = 1000;  // start to start, until then; >= 1, cut to period_ms
};

class ProbeSchedule {
 public:
  // start_ms: when the probe was started (the first attempt is due at
  // start_ms + initial_delay_ms).
  ProbeSchedule(ProbeTiming timing, std::uint64_t start_ms);

  // An attempt should start now: it is due and none is in flight.
  [[nodiscard]] bool due(std::uint64_t now_ms) const;
  void attempt_started(std::uint64_t now_ms);
  // passing: whether the probe passes after this attempt was recorded.
  void attempt_finished(std::uint64_t now_ms, bool passing);

  // When the next attempt is due (meaningless while one is in flight: the
  // next start is decided when it finishes).
  [[nodiscard]] std::uint64_t next_attempt_ms() const { return m_next_ms; }
  [[nodiscard]] bool in_flight() const { return m_in_flight; }
  // True once an attempt has left the probe passing.
  [[nodiscard]] bool seen_passing() const { return m_seen_passing; }
  // The period in effect now: the startup period until passing was seen.
  [[nodiscard]] std::uint32_t current_period_ms() const;

 private:
  ProbeTiming m_timing;
  std::uint64_t m_next_ms;
  std::uint64_t m_last_start_ms = 0;
  bool m_in_flight = false;
  bool m_seen_passing = false;
};

}  // namespace tide::agent
