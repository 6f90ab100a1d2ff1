// The probe schedule on a fake clock: fast until the probe first passes, then
// the normal period; thresholds still counted attempt by attempt.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "agent/core/probe_schedule.hpp"
#include "agent/core/readiness.hpp"

using tide::agent::ProbeSchedule;
using tide::agent::ProbeState;
using tide::agent::ProbeTiming;

namespace {

// One probe driven the way the agent's shell drives it, on a clock advanced
// by hand: an attempt starts when the schedule says it is due, takes
// latency_ms, and succeeds when the application is ready at its start.
struct Sim {
  ProbeSchedule schedule;
  ProbeState state;
  std::uint64_t now_ms;
  std::uint64_t latency_ms = 2;
  std::function<bool(std::uint64_t)> app_ready = [](std::uint64_t) { return false; };
  std::vector<std::uint64_t> starts;
  std::optional<std::uint64_t> passing_since;  // the latest change to passing
  std::optional<std::uint64_t> failing_since;  // the latest change to failing

  Sim(ProbeTiming timing, std::uint32_t success_threshold, std::uint32_t failure_threshold,
      std::uint64_t start_ms = 10'000)
      : schedule(timing, start_ms), state(success_threshold, failure_threshold), now_ms(start_ms) {}

  void run_until(std::uint64_t end_ms) {
    std::optional<std::uint64_t> in_flight_since;
    for (; now_ms <= end_ms; ++now_ms) {
      if (in_flight_since && now_ms >= *in_flight_since + latency_ms) {
        const bool ok = app_ready(*in_flight_since);
        if (state.record(ok, ok ? "ok" : "not ready", 0)) {
          (state.passing() ? passing_since : failing_since) = now_ms;
        }
        schedule.attempt_finished(now_ms, state.passing());
        in_flight_since.reset();
      }
      if (schedule.due(now_ms)) {
        schedule.attempt_started(now_ms);
        starts.push_back(now_ms);
        in_flight_since = now_ms;
      }
    }
    // Leave no attempt half done: finish it at end_ms + latency.
    if (in_flight_since) {
      now_ms = *in_flight_since + latency_ms;
      const bool ok = app_ready(*in_flight_since);
      if (state.record(ok, "", 0)) (state.passing() ? passing_since : failing_since) = now_ms;
      schedule.attempt_finished(now_ms, state.passing());
    }
  }

  [[nodiscard]] std::vector<std::uint64_t> gaps_between(std::uint64_t from_ms, std::uint64_t to_ms) const {
    std::vector<std::uint64_t> gaps;
    std::optional<std::uint64_t> previous;
    for (const auto s : starts) {
      if (s < from_ms || s > to_ms) continue;
      if (previous) gaps.push_back(s - *previous);
      previous = s;
    }
    return gaps;
  }
};

ProbeTiming timing(std::uint32_t startup_ms, std::uint32_t period_ms, std::uint32_t delay_ms = 0) {
  ProbeTiming t;
  t.initial_delay_ms = delay_ms;
  t.period_ms = period_ms;
  t.startup_period_ms = startup_ms;
  return t;
}

}  // namespace

TEST_CASE("the first attempt is due after the initial delay", "[probe_schedule]") {
  ProbeSchedule s(timing(100, 1000, 250), 5'000);
  CHECK_FALSE(s.due(5'000));
  CHECK_FALSE(s.due(5'249));
  CHECK(s.next_attempt_ms() == 5'250);
  CHECK(s.due(5'250));
  CHECK(s.current_period_ms() == 100);
  CHECK_FALSE(s.seen_passing());
}

TEST_CASE("a failing probe runs at the startup period, start to start", "[probe_schedule]") {
  ProbeSchedule s(timing(100, 1000), 0);
  s.attempt_started(0);
  CHECK(s.in_flight());
  CHECK_FALSE(s.due(0));
  CHECK_FALSE(s.due(500));  // in flight: never stacked
  s.attempt_finished(3, false);
  CHECK_FALSE(s.in_flight());
  CHECK(s.next_attempt_ms() == 100);
  CHECK_FALSE(s.due(99));
  CHECK(s.due(100));
  s.attempt_started(101);  // the shell's timer fired a little late
  s.attempt_finished(105, false);
  CHECK(s.next_attempt_ms() == 201);
}

TEST_CASE("the first passing attempt switches to the normal period for good", "[probe_schedule]") {
  ProbeSchedule s(timing(100, 1000), 0);
  s.attempt_started(0);
  s.attempt_finished(2, false);
  s.attempt_started(100);
  s.attempt_finished(102, true);
  CHECK(s.seen_passing());
  CHECK(s.current_period_ms() == 1000);
  CHECK(s.next_attempt_ms() == 1'100);
  // Failing again later does not bring the fast period back.
  s.attempt_started(1'100);
  s.attempt_finished(1'102, false);
  CHECK(s.current_period_ms() == 1000);
  CHECK(s.next_attempt_ms() == 2'100);
}

TEST_CASE("an attempt that outlasts its slot moves the next to the first slot after it", "[probe_schedule]") {
  ProbeSchedule s(timing(100, 1000), 0);
  s.attempt_started(0);
  s.attempt_finished(1'000, false);  // hung until its timeout
  CHECK(s.next_attempt_ms() == 1'000);  // a slot exactly at the end: at once
  s.attempt_started(1'000);
  s.attempt_finished(2'050, false);
  CHECK(s.next_attempt_ms() == 2'100);
  s.attempt_started(2'100);
  s.attempt_finished(2'150, true);  // passing: the next slot on the normal grid
  CHECK(s.next_attempt_ms() == 3'100);
}

TEST_CASE("a startup period longer than the period is cut to the period", "[probe_schedule]") {
  ProbeSchedule s(timing(500, 50), 0);
  CHECK(s.current_period_ms() == 50);
  s.attempt_started(0);
  s.attempt_finished(1, false);
  CHECK(s.next_attempt_ms() == 50);
}

TEST_CASE("zero periods are treated as 1 ms instead of spinning", "[probe_schedule]") {
  ProbeSchedule s(timing(0, 0), 0);
  s.attempt_started(0);
  s.attempt_finished(0, false);
  CHECK(s.next_attempt_ms() == 1);
}

TEST_CASE("an application that becomes ready is seen within one startup period", "[probe_schedule]") {
  // Defaults: 100 ms until ready, 1 s after. Whatever the phase of the
  // application's readiness against the probe grid, the probe passes within
  // startup period + attempt latency.
  for (std::uint64_t ready_at = 10'000; ready_at < 10'250; ready_at += 7) {
    Sim sim(timing(100, 1000), 1, 3);
    sim.app_ready = [ready_at](std::uint64_t t) { return t >= ready_at; };
    sim.run_until(14'000);
    INFO("ready at " << ready_at);
    REQUIRE(sim.passing_since);
    CHECK(*sim.passing_since >= ready_at);
    CHECK(*sim.passing_since <= ready_at + 100 + sim.latency_ms);
    // Before: every 100 ms. After: every 1000 ms.
    for (const auto gap : sim.gaps_between(10'000, *sim.passing_since)) CHECK(gap == 100);
    for (const auto gap : sim.gaps_between(*sim.passing_since - sim.latency_ms, 14'000)) CHECK(gap == 1000);
  }
}

TEST_CASE("success threshold counts fast attempts until the probe first passes", "[probe_schedule]") {
  Sim sim(timing(100, 1000), 3, 3);
  sim.app_ready = [](std::uint64_t t) { return t >= 10'050; };
  sim.run_until(13'000);
  REQUIRE(sim.passing_since);
  // Attempts at 10100, 10200, 10300 succeed; the third one passes.
  CHECK(*sim.passing_since == 10'300 + sim.latency_ms);
  for (const auto gap : sim.gaps_between(10'000, 10'300)) CHECK(gap == 100);
  for (const auto gap : sim.gaps_between(10'300, 13'000)) CHECK(gap == 1000);
}

TEST_CASE("failure threshold after ready counts attempts at the normal period", "[probe_schedule]") {
  Sim sim(timing(100, 1000), 1, 3);
  sim.app_ready = [](std::uint64_t t) { return t >= 10'000 && t < 12'500; };
  sim.run_until(20'000);
  REQUIRE(sim.passing_since);
  CHECK(*sim.passing_since == 10'000 + sim.latency_ms);
  // Attempts at 13000, 14000, 15000 fail; the third one takes the probe out.
  REQUIRE(sim.failing_since);
  CHECK(*sim.failing_since == 15'000 + sim.latency_ms);
  for (const auto gap : sim.gaps_between(10'000, 20'000)) CHECK(gap == 1000);
}

TEST_CASE("a flaky success below the success threshold keeps the fast period", "[probe_schedule]") {
  Sim sim(timing(100, 1000), 2, 1);
  // Ready for one attempt only, then not ready until 11'000.
  sim.app_ready = [](std::uint64_t t) { return (t >= 10'200 && t < 10'250) || t >= 11'000; };
  sim.run_until(13'000);
  REQUIRE(sim.passing_since);
  CHECK(*sim.passing_since == 11'100 + sim.latency_ms);
  for (const auto gap : sim.gaps_between(10'000, 11'100)) CHECK(gap == 100);
  for (const auto gap : sim.gaps_between(11'100, 13'000)) CHECK(gap == 1000);
}

TEST_CASE("equal periods behave as a plain periodic probe", "[probe_schedule]") {
  Sim sim(timing(1000, 1000), 1, 3);
  sim.app_ready = [](std::uint64_t t) { return t >= 10'500; };
  sim.run_until(15'000);
  REQUIRE(sim.passing_since);
  CHECK(*sim.passing_since == 11'000 + sim.latency_ms);
  for (const auto gap : sim.gaps_between(10'000, 15'000)) CHECK(gap == 1000);
}
