// The Autoscaler on a fake clock: alarm policies, target tracking and their
// interplay (docs/policies.md).
#include "coordinator/core/scaling.hpp"

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

using namespace tide::coordinator;

namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

ScalingGroup web(std::uint32_t desired) {
  ScalingGroup g;
  g.name = "web";
  g.min = 1;
  g.max = 20;
  g.desired = desired;
  g.default_cooldown_ms = 300'000;
  return g;
}

AlarmPolicy alarm(std::string name, Comparison comparison, double threshold,
                  std::int32_t adjustment) {
  AlarmPolicy p;
  p.group = "web";
  p.name = std::move(name);
  p.metric = std::string(kMetricCpu);
  p.statistic = Statistic::Average;
  p.comparison = comparison;
  p.threshold = threshold;
  p.period_ms = 5'000;
  p.evaluation_periods = 2;
  p.adjustment_type = AdjustmentType::ChangeInCapacity;
  p.adjustment = adjustment;
  return p;
}

TargetTrackingPolicy tracking(std::string name, double target) {
  TargetTrackingPolicy p;
  p.group = "web";
  p.name = std::move(name);
  p.metric = std::string(kMetricCpu);
  p.target = target;
  p.window_ms = 1'000;  // the last second: each step's value is what the test reports
  p.scale_in_stabilization_ms = 30'000;
  return p;
}

// One group on a fake clock. Each step: every reporting instance sends one
// value during the second [now, now + 1 s), the clock moves to the end of
// that second, and the Autoscaler evaluates; a decision is applied to the
// group at once, as the shell would with Fleet::set_desired.
struct Sim {
  explicit Sim(std::uint32_t desired)
      : group(web(desired)), in_service(desired), eligible(desired) {}

  void report(double value, std::uint32_t reporters, std::string_view metric = kMetricCpu) {
    for (std::uint32_t k = 0; k < reporters; ++k) {
      const std::array<MetricSample, 1> samples{{{metric, value}}};
      windows.record(group.name, "i-" + std::to_string(k), now + k, samples);
    }
  }

  std::vector<ScalingDecision> evaluate() {
    const GroupStatus status{&group, in_service, eligible};
    auto decisions = scaler.evaluate(now, windows, std::span<const GroupStatus>(&status, 1));
    for (const ScalingDecision& d : decisions) {
      REQUIRE(d.group == group.name);
      REQUIRE(d.from_desired == group.desired);
      group.desired = d.to_desired;
    }
    return decisions;
  }

  std::optional<ScalingDecision> step(double value) { return step_with(value, eligible); }

  std::optional<ScalingDecision> step_with(double value, std::uint32_t reporters) {
    report(value, reporters);
    now += 1'000;
    auto decisions = evaluate();
    REQUIRE(decisions.size() <= 1);
    if (decisions.empty()) return std::nullopt;
    return decisions.front();
  }

  // Steps until a decision comes or `limit` steps pass; returns the number
  // of steps taken (limit + 1 when none came).
  int steps_until_decision(double value, int limit) {
    for (int k = 1; k <= limit; ++k) {
      if (step(value)) return k;
    }
    return limit + 1;
  }

  ScalingGroup group;
  std::uint32_t in_service;
  std::uint32_t eligible;
  TimeMs now = kT0;
  MetricWindows windows;
  Autoscaler scaler;
};

}  // namespace

// ---- alarms ----------------------------------------------------------------

TEST_CASE("an alarm fires after exactly its consecutive periods, not before") {
  const std::uint32_t periods = GENERATE(1u, 2u, 3u);
  Sim sim(4);
  AlarmPolicy p = alarm("cpu-high", Comparison::Greater, 85.0, 1);
  p.evaluation_periods = periods;
  REQUIRE(sim.scaler.put_alarm(p));
  for (int k = 0; k < 30; ++k) REQUIRE_FALSE(sim.step(50.0));

  // Load starts: a 5 s period of 90 averages above 85 only once all five of
  // its seconds are high, so the alarm fires after exactly 5 s x periods
  // (plus up to one tick of the shell: the 11 s target for 5 s x 2).
  const int steps = sim.steps_until_decision(90.0, 100);
  CHECK(steps == static_cast<int>(5 * periods));
  CHECK(sim.group.desired == 5);
  CHECK(sim.scaler.last_fired_ms("web", "cpu-high") == sim.now);
}

TEST_CASE(
    "in alarm while the condition holds, cooldown or not; out of it when it stops or the group is "
    "disabled") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 85.0, 1)));
  CHECK_FALSE(sim.scaler.in_alarm("web", "cpu-high"));
  for (int k = 0; k < 30; ++k) REQUIRE_FALSE(sim.step(50.0));
  CHECK_FALSE(sim.scaler.in_alarm("web", "cpu-high"));
  REQUIRE(sim.steps_until_decision(90.0, 100) == 10);
  CHECK(sim.scaler.in_alarm("web", "cpu-high"));
  REQUIRE_FALSE(sim.step(90.0));  // in its cooldown: no decision, still in alarm
  CHECK(sim.scaler.in_alarm("web", "cpu-high"));
  for (int k = 0; k < 10; ++k) REQUIRE_FALSE(sim.step(50.0));
  CHECK_FALSE(sim.scaler.in_alarm("web", "cpu-high"));
  for (int k = 0; k < 10; ++k) REQUIRE_FALSE(sim.step(90.0));
  CHECK(sim.scaler.in_alarm("web", "cpu-high"));
  sim.group.enabled = false;
  REQUIRE_FALSE(sim.step(90.0));
  CHECK_FALSE(sim.scaler.in_alarm("web", "cpu-high"));
  CHECK_FALSE(sim.scaler.in_alarm("web", "no-such-policy"));
}

TEST_CASE("the cause names the policy and the measured values") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 80.0, 2)));
  for (int k = 0; k < 5; ++k) REQUIRE_FALSE(sim.step(87.5));
  std::optional<ScalingDecision> d;
  for (int k = 0; k < 5 && !d; ++k) d = sim.step(91.25);
  REQUIRE(d);
  CHECK(d->from_desired == 4);
  CHECK(d->to_desired == 6);
  CHECK(d->policies == std::vector<std::string>{"cpu-high"});
  CHECK(d->cause == "alarm cpu-high: cpu average 91.25 > 80 for 2 x 5 s (87.5, 91.25), change +2");
}

TEST_CASE("missing data: a period without samples, or a history shorter than the span") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 80.0, 1)));
  // Silence, then load: the alarm waits for data covering both periods.
  for (int k = 0; k < 20; ++k) REQUIRE_FALSE(sim.step_with(95.0, 0));
  CHECK(sim.steps_until_decision(95.0, 30) == 10);

  // A whole period of silence in the newest period: not met.
  Sim gap(4);
  REQUIRE(gap.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 80.0, 1)));
  for (int k = 0; k < 5; ++k) REQUIRE_FALSE(gap.step(95.0));
  for (int k = 0; k < 5; ++k) REQUIRE_FALSE(gap.step_with(95.0, 0));
  // ...while [now-10 s, now-5 s) is full of 95 and [now-5 s, now) is empty.
  CHECK(gap.windows.stats("web", kMetricCpu, gap.now - 10'000, gap.now - 5'000));
  CHECK_FALSE(gap.windows.stats("web", kMetricCpu, gap.now - 5'000, gap.now));
  CHECK(gap.windows.first_sample_ms("web", kMetricCpu) == kT0);
}

TEST_CASE("cooldown: the policy's own, else the group's default") {
  const bool own = GENERATE(true, false);
  Sim sim(2);
  AlarmPolicy p = alarm("cpu-high", Comparison::Greater, 80.0, 1);
  if (own)
    p.cooldown_ms = 20'000;
  else
    sim.group.default_cooldown_ms = 20'000;
  REQUIRE(sim.scaler.put_alarm(p));
  REQUIRE(sim.steps_until_decision(90.0, 100) == 10);
  CHECK(sim.group.desired == 3);
  // Condition still holds: nothing for 20 s, then the next step.
  CHECK(sim.steps_until_decision(90.0, 100) == 20);
  CHECK(sim.group.desired == 4);
}

TEST_CASE("each comparison") {
  using Row = std::tuple<Comparison, double, bool>;  // comparison, threshold, fires at a steady 50
  const auto [comparison, threshold, fires] = GENERATE(table<Comparison, double, bool>({
      Row{Comparison::Greater, 49.0, true},
      Row{Comparison::Greater, 50.0, false},
      Row{Comparison::GreaterEqual, 50.0, true},
      Row{Comparison::GreaterEqual, 51.0, false},
      Row{Comparison::Less, 51.0, true},
      Row{Comparison::Less, 50.0, false},
      Row{Comparison::LessEqual, 50.0, true},
      Row{Comparison::LessEqual, 49.0, false},
      Row{Comparison::Equal, 50.0, true},
      Row{Comparison::Equal, 50.5, false},
      Row{Comparison::NotEqual, 50.5, true},
      Row{Comparison::NotEqual, 50.0, false},
  }));
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("a", comparison, threshold, 1)));
  CHECK((sim.steps_until_decision(50.0, 30) == 10) == fires);
}

TEST_CASE("adjustments: change, exact, percent with truncation and minimum step") {
  using Row = std::tuple<AdjustmentType, std::int32_t, std::uint32_t, std::uint32_t, std::uint32_t>;
  // type, adjustment, min magnitude, from, expected (before clamping)
  const auto [type, adjustment, magnitude, from, expected] =
      GENERATE(table<AdjustmentType, std::int32_t, std::uint32_t, std::uint32_t, std::uint32_t>({
          Row{AdjustmentType::ChangeInCapacity, 2, 0, 4, 6},
          Row{AdjustmentType::ChangeInCapacity, -1, 0, 4, 3},
          Row{AdjustmentType::ChangeInCapacity, -3, 0, 2, 0},  // never below 0
          Row{AdjustmentType::ExactCapacity, 7, 0, 4, 7},
          Row{AdjustmentType::ExactCapacity, 0, 0, 4, 0},
          Row{AdjustmentType::PercentChangeInCapacity, 50, 0, 4, 6},
          Row{AdjustmentType::PercentChangeInCapacity, 10, 0, 4, 5},    // 0.4 -> at least 1
          Row{AdjustmentType::PercentChangeInCapacity, 10, 0, 25, 27},  // 2.5 -> 2
          Row{AdjustmentType::PercentChangeInCapacity, -50, 0, 5, 3},   // -2.5 -> -2
          Row{AdjustmentType::PercentChangeInCapacity, -10, 0, 4, 3},   // -0.4 -> -1
          Row{AdjustmentType::PercentChangeInCapacity, 10, 3, 4, 7},    // minimum step 3
          Row{AdjustmentType::PercentChangeInCapacity, 50, 1, 10, 15},  // step 5 > minimum 1
          Row{AdjustmentType::PercentChangeInCapacity, -20, 4, 10, 6},  // -2 -> -4
          Row{AdjustmentType::PercentChangeInCapacity, -100, 0, 4, 0},
          Row{AdjustmentType::PercentChangeInCapacity, 200, 0, 3, 9},
          Row{AdjustmentType::PercentChangeInCapacity, 10, 0, 0, 1},  // from zero: at least 1
      }));
  AlarmPolicy p = alarm("a", Comparison::Greater, 0.0, 1);
  p.adjustment_type = type;
  p.adjustment = adjustment;
  p.min_adjustment_magnitude = magnitude;
  REQUIRE(validate(p));
  CHECK(apply_adjustment(p, from) == expected);
}

TEST_CASE("an alarm's result is clamped to [min, max]; at a bound nothing happens") {
  Sim sim(18);
  REQUIRE(sim.scaler.put_alarm(alarm("big", Comparison::Greater, 80.0, 5)));
  REQUIRE(sim.steps_until_decision(90.0, 30) == 10);
  CHECK(sim.group.desired == 20);
  // At max the alarm keeps holding without a decision (and without cooldown).
  const auto fired = sim.scaler.last_fired_ms("web", "big");
  CHECK(sim.steps_until_decision(90.0, 400) == 401);
  CHECK(sim.scaler.last_fired_ms("web", "big") == fired);

  Sim low(2);
  low.group.default_cooldown_ms = 0;
  REQUIRE(low.scaler.put_alarm(alarm("low", Comparison::Less, 10.0, -5)));
  REQUIRE(low.steps_until_decision(5.0, 30) == 10);
  CHECK(low.group.desired == 1);  // min
}

TEST_CASE("a scale-in alarm is blocked by incomplete data, never a scale-out alarm") {
  Sim sim(4);
  sim.group.default_cooldown_ms = 0;
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-low", Comparison::Less, 20.0, -1)));
  // Three of four eligible instances report: the silent one may be busy.
  for (int k = 0; k < 30; ++k) REQUIRE_FALSE(sim.step_with(5.0, 3));
  // All four report: after one full period of complete data it fires.
  CHECK(sim.step_with(5.0, 4));
  CHECK(sim.group.desired == 3);

  Sim out(4);
  REQUIRE(out.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 80.0, 1)));
  int steps = 0;
  while (++steps < 30 && !out.step_with(95.0, 2)) {
  }
  CHECK(steps == 10);
}

// ---- target tracking -------------------------------------------------------

TEST_CASE("target tracking recommendation: desired = ceil(in_service * value / target)") {
  using Row = std::tuple<std::uint32_t, double, double, double, std::optional<std::uint32_t>>;
  // in service, value, target, tolerance, recommendation (nullopt: hold)
  const auto [in_service, value, target, tolerance, expected] =
      GENERATE(table<std::uint32_t, double, double, double, std::optional<std::uint32_t>>({
          Row{4, 75.0, 50.0, 0.1, 6u}, Row{4, 100.0, 50.0, 0.1, 8u},
          Row{7, 60.0, 40.0, 0.1, 11u},  // 10.5 -> 11
          Row{4, 25.0, 50.0, 0.1, 2u}, Row{10, 30.0, 50.0, 0.1, 6u},
          Row{10, 0.0, 50.0, 0.1, 0u},  // the caller clamps to min
          Row{1, 500.0, 50.0, 0.1, 10u},
          Row{3, 77.0, 70.0, 0.1, std::nullopt},  // ratio 1.1: on the tolerance's edge, inside
          Row{4, 55.0, 50.0, 0.1, std::nullopt}, Row{4, 45.0, 50.0, 0.1, std::nullopt},
          Row{4, 54.0, 50.0, 0.0, 5u},                                         // no tolerance
          Row{4, 50.0, 50.0, 0.0, std::nullopt}, Row{4, 56.0, 50.0, 0.1, 5u},  // 4.48 -> 5
          Row{4, 44.0, 50.0, 0.1, 4u},  // 3.52 -> 4: outside the tolerance, no change
          Row{20, 70.0, 50.0, 0.3, 28u}, Row{20, 66.0, 50.0, 0.35, std::nullopt},
          Row{0, 90.0, 50.0, 0.1, std::nullopt},  // nobody in service: no recommendation
      }));
  TargetTrackingPolicy p = tracking("t", target);
  p.tolerance = tolerance;
  CHECK(target_tracking_recommendation(p, in_service, value) == expected);
}

TEST_CASE("target tracking scales out at once") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_target_tracking(tracking("cpu-50", 50.0)));
  const auto d = sim.step(75.0);
  REQUIRE(d);
  CHECK(d->to_desired == 6);
  CHECK(d->policies == std::vector<std::string>{"cpu-50"});
  CHECK(d->cause == "target tracking cpu-50: cpu average 75 over 1 s, target 50, 4 in service: 6");
  // Same load, same in-service count: the recommendation is met.
  CHECK_FALSE(sim.step(75.0));
}

TEST_CASE(
    "a step in load: the scale-out window reaches the needed size in one move, the full window in "
    "several") {
  // 2 instances at 20 req/s each for a minute, then a flash crowd: 100 each.
  // Target 50 per instance: the load needs ceil(2 x 100 / 50) = 4.
  const auto run = [](std::int64_t scale_out_window_ms) {
    Sim sim(2);
    sim.group.min = 2;
    sim.group.max = 10;
    TargetTrackingPolicy p = tracking("rps-50", 50.0);
    p.metric = "requests_per_instance";
    p.window_ms = 30'000;
    p.scale_out_window_ms = scale_out_window_ms;
    REQUIRE(sim.scaler.put_target_tracking(p));
    const auto report_step = [&](double value) {
      sim.report(value, sim.eligible, "requests_per_instance");
      sim.now += 1'000;
      return sim.evaluate();
    };
    for (int t = 0; t < 60; ++t) REQUIRE(report_step(20.0).empty());  // wants 1; min is 2
    std::vector<ScalingDecision> moves;
    for (int t = 0; t < 30; ++t) {
      for (auto& d : report_step(100.0)) moves.push_back(d);
    }
    return moves;
  };
  const auto fast = run(1'000);
  REQUIRE(fast.size() == 1);
  CHECK(fast[0].to_desired == 4);
  CHECK(fast[0].cause.find("requests_per_instance average 100 over 1 s") != std::string::npos);
  // A 3 s span smooths more: it gets there within its span, in fewer moves
  // than the full window.
  const auto smoothed = run(3'000);
  REQUIRE_FALSE(smoothed.empty());
  CHECK(smoothed.back().to_desired == 4);
  // Without it the window's average climbs second by second: more moves,
  // the first of them short of 4.
  const auto slow = run(0);
  REQUIRE(slow.size() >= 1);
  CHECK(slow.front().to_desired < 4);
}

TEST_CASE("the scale-out window never scales in, and is refused outside 1 s..the window") {
  Sim sim(6);
  TargetTrackingPolicy p = tracking("cpu-50", 50.0);
  p.window_ms = 10'000;
  p.scale_out_window_ms = 2'000;
  p.scale_in_stabilization_ms = 0;
  REQUIRE(sim.scaler.put_target_tracking(p));
  for (int t = 0; t < 10; ++t) REQUIRE_FALSE(sim.step(50.0));
  // A dip in the recent seconds only: the 10 s average still holds 6.
  CHECK_FALSE(sim.step(10.0));
  CHECK_FALSE(sim.step(10.0));

  for (const std::int64_t bad : {std::int64_t{500}, std::int64_t{20'000}}) {
    TargetTrackingPolicy q = p;
    q.scale_out_window_ms = bad;
    const auto refused = validate(q);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().field == "scale_out_window_ms");
  }
}

TEST_CASE(
    "target tracking scales in only to the highest recommendation of the stabilisation window") {
  Sim sim(10);
  REQUIRE(sim.scaler.put_target_tracking(tracking("cpu-50", 50.0)));  // 30 s stabilisation
  REQUIRE_FALSE(sim.step(50.0));                                      // t=1: hold (10)
  // t=2..11: 40 -> 8; t=12..: 30 -> 6 (in service stays 10 for clarity).
  std::vector<std::pair<int, std::uint32_t>> seen;  // (t, to)
  for (int t = 2; t <= 60; ++t) {
    if (auto d = sim.step(t <= 11 ? 40.0 : 30.0)) seen.emplace_back(t, d->to_desired);
  }
  // The 10 recorded at t=1 leaves the window at t=31; the 8s (t=2..11) at
  // t=41; each step scales in to the highest recommendation left.
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair<int, std::uint32_t>{31, 8});
  CHECK(seen[1] == std::pair<int, std::uint32_t>{41, 6});
}

TEST_CASE("a stabilisation window of zero scales in at once") {
  Sim sim(10);
  TargetTrackingPolicy p = tracking("cpu-50", 50.0);
  p.scale_in_stabilization_ms = 0;
  REQUIRE(sim.scaler.put_target_tracking(p));
  const auto d = sim.step(30.0);
  REQUIRE(d);
  CHECK(d->to_desired == 6);
}

TEST_CASE("target tracking rate limits, per direction") {
  Sim sim(4);
  TargetTrackingPolicy p = tracking("cpu-50", 50.0);
  p.scale_out_limit = ScalingRateLimit{2, 60'000};
  p.scale_in_limit = ScalingRateLimit{1, 60'000};
  p.scale_in_stabilization_ms = 0;
  REQUIRE(sim.scaler.put_target_tracking(p));
  // 4 in service at 125 -> 10; at most 2 a minute.
  auto d = sim.step(125.0);
  REQUIRE(d);
  CHECK(d->to_desired == 6);
  CHECK(d->cause.find("rate limit: 6") != std::string::npos);
  CHECK(sim.steps_until_decision(125.0, 100) == 60);
  CHECK(sim.group.desired == 8);
  // Scale in: 10 in service at 25 -> 5; at most 1 a minute.
  sim.in_service = 10;
  sim.eligible = 10;
  d = sim.step(25.0);
  REQUIRE(d);
  CHECK(d->to_desired == 7);
  CHECK(sim.steps_until_decision(25.0, 100) == 60);
  CHECK(sim.group.desired == 6);
}

TEST_CASE("disable_scale_in: target tracking never scales in, but lets an alarm do it") {
  Sim sim(10);
  TargetTrackingPolicy p = tracking("cpu-50", 50.0);
  p.disable_scale_in = true;
  p.scale_in_stabilization_ms = 0;
  REQUIRE(sim.scaler.put_target_tracking(p));
  CHECK(sim.steps_until_decision(10.0, 60) == 61);
  CHECK(sim.group.desired == 10);
  // It still scales out.
  REQUIRE(sim.step(80.0));
  CHECK(sim.group.desired == 16);

  Sim both(10);
  both.group.default_cooldown_ms = 0;
  REQUIRE(both.scaler.put_target_tracking(p));
  REQUIRE(both.scaler.put_alarm(alarm("cpu-low", Comparison::Less, 20.0, -2)));
  CHECK(both.steps_until_decision(10.0, 60) == 10);
  CHECK(both.group.desired == 8);
}

TEST_CASE("target tracking holds on missing or incomplete data") {
  Sim sim(10);
  TargetTrackingPolicy p = tracking("cpu-50", 50.0);
  p.scale_in_stabilization_ms = 0;
  REQUIRE(sim.scaler.put_target_tracking(p));
  CHECK_FALSE(sim.step_with(10.0, 0));    // missing
  CHECK_FALSE(sim.step_with(10.0, 9));    // 9 of 10 reported: no scale-in
  const auto d = sim.step_with(90.0, 9);  // but scale-out goes ahead
  REQUIRE(d);
  CHECK(d->to_desired == 18);
  sim.in_service = 0;
  CHECK_FALSE(sim.step(90.0));  // nobody in service: no recommendation

  // A history shorter than the window (after a restart) is incomplete too.
  Sim fresh(10);
  p.window_ms = 10'000;
  REQUIRE(fresh.scaler.put_target_tracking(p));
  CHECK(fresh.steps_until_decision(10.0, 30) == 10);
  CHECK(fresh.group.desired == 2);
}

// ---- interplay --------------------------------------------------------------

TEST_CASE("interplay: the largest scale-out wins and every scale-out alarm enters its cooldown") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("plus-one", Comparison::Greater, 80.0, 1)));
  REQUIRE(sim.scaler.put_alarm(alarm("plus-three", Comparison::Greater, 85.0, 3)));
  REQUIRE(sim.scaler.put_target_tracking(tracking("cpu-90", 90.0)));  // on target: holds
  REQUIRE(sim.steps_until_decision(90.0, 30) == 10);
  CHECK(sim.group.desired == 7);
  CHECK(sim.scaler.last_fired_ms("web", "plus-one") == sim.now);
  CHECK(sim.scaler.last_fired_ms("web", "plus-three") == sim.now);

  // Target tracking wanting more than an alarm wins over it.
  Sim tt(4);
  REQUIRE(tt.scaler.put_alarm(alarm("plus-one", Comparison::Greater, 80.0, 1)));
  REQUIRE(tt.scaler.put_target_tracking(tracking("cpu-50", 50.0)));
  tt.in_service = 0;  // nothing in service yet: target tracking holds
  for (int k = 0; k < 9; ++k) REQUIRE_FALSE(tt.step(90.0));
  tt.in_service = 4;
  const auto d = tt.step(90.0);
  REQUIRE(d);
  CHECK(d->to_desired == 8);  // ceil(4 * 90 / 50) beats 4 + 1
  CHECK(d->policies == std::vector<std::string>{"plus-one", "cpu-50"});
  CHECK(d->cause.find("alarm plus-one: ") == 0);
  CHECK(d->cause.find("; target tracking cpu-50: ") != std::string::npos);
}

TEST_CASE("interplay: scale-in never goes below what another policy needs") {
  Sim sim(10);
  sim.group.default_cooldown_ms = 0;
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-low", Comparison::Less, 60.0, -2)));
  REQUIRE(sim.scaler.put_target_tracking(tracking("cpu-50", 50.0)));  // 50 is on target: hold
  CHECK(sim.steps_until_decision(50.0, 60) == 61);
  CHECK(sim.group.desired == 10);

  // A scale-out alarm in its cooldown whose condition holds keeps the
  // capacity too.
  Sim held(4);
  AlarmPolicy out = alarm("mem-high", Comparison::Greater, 80.0, 1);
  out.metric = std::string(kMetricMemory);
  out.cooldown_ms = 600'000;
  AlarmPolicy in = alarm("cpu-low", Comparison::Less, 20.0, -1);
  in.cooldown_ms = 0;
  REQUIRE(held.scaler.put_alarm(out));
  REQUIRE(held.scaler.put_alarm(in));
  auto both = [&](double cpu, double memory) {
    held.report(memory, held.eligible, kMetricMemory);
    held.report(cpu, held.eligible, kMetricCpu);
    held.now += 1'000;
    auto d = held.evaluate();
    return d.empty() ? std::optional<ScalingDecision>{} : std::optional<ScalingDecision>{d.front()};
  };
  std::optional<ScalingDecision> d;
  for (int k = 0; k < 10; ++k) d = both(5.0, 90.0);
  REQUIRE(d);
  CHECK(d->to_desired == 5);  // memory alarm fired; the cpu alarm was out-voted
  for (int k = 0; k < 60; ++k) CHECK_FALSE(both(5.0, 90.0));
  // Memory drops: the cpu alarm scales in.
  std::optional<ScalingDecision> later;
  for (int k = 0; k < 12 && !later; ++k) later = both(5.0, 50.0);
  REQUIRE(later);
  CHECK(later->to_desired == 4);
  CHECK(later->policies == std::vector<std::string>{"cpu-low"});
}

TEST_CASE("interplay: of two scale-in alarms the smaller step wins") {
  Sim sim(10);
  sim.group.default_cooldown_ms = 60'000;
  REQUIRE(sim.scaler.put_alarm(alarm("minus-one", Comparison::Less, 20.0, -1)));
  REQUIRE(sim.scaler.put_alarm(alarm("minus-three", Comparison::Less, 20.0, -3)));
  REQUIRE(sim.steps_until_decision(5.0, 30) == 10);
  CHECK(sim.group.desired == 9);
  // minus-one is cooling down; minus-three, held back, acts next.
  REQUIRE(sim.steps_until_decision(5.0, 30) == 1);
  CHECK(sim.group.desired == 6);
}

TEST_CASE("interplay: missing data of a target-tracking policy blocks an alarm's scale-in") {
  Sim sim(10);
  sim.group.default_cooldown_ms = 0;
  TargetTrackingPolicy p = tracking("rps", 100.0);
  p.metric = "requests_per_s";  // nobody reports it
  REQUIRE(sim.scaler.put_target_tracking(p));
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-low", Comparison::Less, 20.0, -1)));
  CHECK(sim.steps_until_decision(5.0, 30) == 31);
  REQUIRE(sim.scaler.remove_policy("web", "rps"));
  CHECK(sim.steps_until_decision(5.0, 30) == 1);
}

TEST_CASE("a disabled group or policy runs nothing") {
  Sim sim(4);
  REQUIRE(sim.scaler.put_alarm(alarm("cpu-high", Comparison::Greater, 80.0, 1)));
  REQUIRE(sim.scaler.put_target_tracking(tracking("cpu-50", 50.0)));
  sim.group.enabled = false;
  CHECK(sim.steps_until_decision(95.0, 30) == 31);
  sim.group.enabled = true;
  AlarmPolicy a = alarm("cpu-high", Comparison::Greater, 80.0, 1);
  a.enabled = false;
  TargetTrackingPolicy t = tracking("cpu-50", 50.0);
  t.enabled = false;
  REQUIRE(sim.scaler.put_alarm(a));
  REQUIRE(sim.scaler.put_target_tracking(t));
  CHECK(sim.steps_until_decision(95.0, 30) == 31);
  t.enabled = true;
  REQUIRE(sim.scaler.put_target_tracking(t));
  CHECK(sim.steps_until_decision(95.0, 30) == 1);
}

TEST_CASE("several groups in one evaluation") {
  MetricWindows windows;
  Autoscaler scaler;
  ScalingGroup a = web(2);
  ScalingGroup b = web(2);
  b.name = "api";
  TargetTrackingPolicy pa = tracking("t", 50.0);
  TargetTrackingPolicy pb = tracking("t", 50.0);
  pb.group = "api";
  REQUIRE(scaler.put_target_tracking(pa));
  REQUIRE(scaler.put_target_tracking(pb));
  for (int k = 0; k < 2; ++k) {
    const std::array<MetricSample, 1> high{{{kMetricCpu, 100.0}}};
    const std::array<MetricSample, 1> ok{{{kMetricCpu, 50.0}}};
    windows.record("web", "w" + std::to_string(k), kT0, high);
    windows.record("api", "a" + std::to_string(k), kT0, ok);
  }
  const std::array<GroupStatus, 2> statuses{{{&a, 2, 2}, {&b, 2, 2}}};
  const auto decisions = scaler.evaluate(kT0 + 1'000, windows, statuses);
  REQUIRE(decisions.size() == 1);
  CHECK(decisions[0].group == "web");
  CHECK(decisions[0].to_desired == 4);
}

// ---- policies and execute ----------------------------------------------------

TEST_CASE("put, replace and remove policies") {
  Autoscaler scaler(600'000);
  REQUIRE(scaler.put_alarm(alarm("a", Comparison::Greater, 80.0, 1)));
  AlarmPolicy changed = alarm("a", Comparison::Greater, 90.0, 1);
  REQUIRE(scaler.put_alarm(changed));
  REQUIRE(scaler.alarm("web", "a") != nullptr);
  CHECK(scaler.alarm("web", "a")->threshold == 90.0);
  CHECK(scaler.alarms_of("web").size() == 1);

  // Names are unique across kinds.
  auto clash = scaler.put_target_tracking(tracking("a", 50.0));
  REQUIRE_FALSE(clash);
  CHECK(clash.error().message == "group web already has an alarm policy named a");
  REQUIRE(scaler.put_target_tracking(tracking("t", 50.0)));
  REQUIRE_FALSE(scaler.put_alarm(alarm("t", Comparison::Greater, 80.0, 1)));
  CHECK(scaler.target_tracking_of("web").size() == 1);

  // Invalid, or longer than the metric windows keep.
  AlarmPolicy bad = alarm("b", Comparison::Greater, 80.0, 0);
  CHECK_FALSE(scaler.put_alarm(bad));
  AlarmPolicy long_span = alarm("c", Comparison::Greater, 80.0, 1);
  long_span.period_ms = 300'000;
  long_span.evaluation_periods = 3;
  auto refused = scaler.put_alarm(long_span);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message ==
        "period x evaluation_periods = 15 min exceeds the metric retention of 10 min");
  TargetTrackingPolicy wide = tracking("w", 50.0);
  wide.window_ms = 700'000;
  CHECK_FALSE(scaler.put_target_tracking(wide));

  CHECK(scaler.remove_policy("web", "a"));
  CHECK(scaler.remove_policy("web", "t"));
  CHECK_FALSE(scaler.remove_policy("web", "a"));
  CHECK_FALSE(scaler.remove_policy("nope", "a"));
  REQUIRE(scaler.put_alarm(alarm("a", Comparison::Greater, 80.0, 1)));
  scaler.remove_group("web");
  CHECK(scaler.alarm("web", "a") == nullptr);
}

TEST_CASE("execute_policy runs an alarm's adjustment now") {
  Autoscaler scaler;
  ScalingGroup g = web(4);
  AlarmPolicy p = alarm("plus-two", Comparison::Greater, 80.0, 2);
  p.cooldown_ms = 60'000;
  REQUIRE(scaler.put_alarm(p));
  REQUIRE(scaler.put_target_tracking(tracking("t", 50.0)));
  AlarmPolicy off = alarm("off", Comparison::Greater, 80.0, 1);
  off.enabled = false;
  REQUIRE(scaler.put_alarm(off));

  auto d = scaler.execute_policy(g, "plus-two", true, kT0);
  REQUIRE(d);
  CHECK(d->from_desired == 4);
  CHECK(d->to_desired == 6);
  CHECK(d->cause == "policy plus-two executed by request: change +2");
  CHECK(scaler.last_fired_ms("web", "plus-two") == kT0);
  g.desired = 6;

  auto cooling = scaler.execute_policy(g, "plus-two", true, kT0 + 10'000);
  REQUIRE_FALSE(cooling);
  CHECK(cooling.error().message == "policy plus-two is in its cooldown for another 50 s");
  d = scaler.execute_policy(g, "plus-two", false, kT0 + 10'000);
  REQUIRE(d);
  CHECK(d->to_desired == 8);

  CHECK(scaler.execute_policy(g, "nope", true, kT0).error().message ==
        "group web has no policy named nope");
  CHECK(scaler.execute_policy(g, "t", true, kT0).error().message ==
        "policy t is a target-tracking policy; only alarm policies can be executed");
  CHECK(scaler.execute_policy(g, "off", true, kT0).error().message == "policy off is disabled");

  // A disabled group: a user request still works; clamped to max.
  g.enabled = false;
  g.desired = 19;
  d = scaler.execute_policy(g, "plus-two", false, kT0 + 20'000);
  REQUIRE(d);
  CHECK(d->to_desired == 20);
}

TEST_CASE("group_status counts in-service and eligible instances") {
  ScalingGroup g = web(3);
  g.warmup_ms = 10'000;
  std::vector<Instance> instances(4);
  for (auto& i : instances) {
    i.state = LifecycleState::InService;
    i.runtime.ready = true;
    i.state_since_ms = kT0;
  }
  instances[1].state_since_ms = kT0 + 5'000;  // still warming up
  instances[2].state = LifecycleState::Booting;
  const std::vector<const Instance*> ptrs{&instances[0], &instances[1], &instances[2],
                                          &instances[3]};
  const GroupStatus s = group_status(g, ptrs, kT0 + 12'000);
  CHECK(s.group == &g);
  CHECK(s.in_service == 3);
  CHECK(s.eligible == 2);
}

TEST_CASE("format_value") {
  CHECK(format_value(87.5) == "87.5");
  CHECK(format_value(80.0) == "80");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(1234567.0) == "1.23457e+06");
}
