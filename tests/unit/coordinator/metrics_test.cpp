// MetricWindows and metrics_eligible on a fake clock (docs/policies.md,
// "Metrics").
#include <array>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/metrics.hpp"

using namespace tide::coordinator;

namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;  // a whole second

void cpu(MetricWindows& w, std::string_view instance, TimeMs at, double value, std::string_view group = "web") {
  const std::array<MetricSample, 1> samples{{{kMetricCpu, value}}};
  w.record(group, instance, at, samples);
}

Instance in_service_since(TimeMs since) {
  Instance i;
  i.id = "i-1";
  i.group = "web";
  i.state = LifecycleState::InService;
  i.state_since_ms = since;
  i.runtime.ready = true;
  return i;
}

}  // namespace

TEST_CASE("metrics_eligible: in service, ready, healthy and past the warm-up") {
  ScalingGroup g;
  g.name = "web";
  g.warmup_ms = 30'000;
  Instance i = in_service_since(kT0);
  CHECK_FALSE(metrics_eligible(i, g, kT0));
  CHECK_FALSE(metrics_eligible(i, g, kT0 + 29'999));
  CHECK(metrics_eligible(i, g, kT0 + 30'000));

  g.warmup_ms = 0;
  CHECK(metrics_eligible(i, g, kT0));

  i.runtime.ready = std::nullopt;  // no report yet
  CHECK_FALSE(metrics_eligible(i, g, kT0));
  i.runtime.ready = false;
  CHECK_FALSE(metrics_eligible(i, g, kT0));
  i.runtime.ready = true;
  i.health = Health::Unhealthy;
  CHECK_FALSE(metrics_eligible(i, g, kT0));
  i.health = Health::Healthy;

  for (LifecycleState s : {LifecycleState::Pending, LifecycleState::Booting, LifecycleState::PendingLaunchHook,
                           LifecycleState::Warming, LifecycleState::OutOfRotation, LifecycleState::Draining,
                           LifecycleState::PendingTerminateHook, LifecycleState::Terminating,
                           LifecycleState::Terminated, LifecycleState::LaunchFailed, LifecycleState::Detached}) {
    i.state = s;
    CHECK_FALSE(metrics_eligible(i, g, kT0 + 3'600'000));
  }
}

TEST_CASE("statistics over a window: average, maximum, minimum, samples") {
  MetricWindows w;
  cpu(w, "a", kT0 + 100, 10.0);
  cpu(w, "b", kT0 + 200, 30.0);
  cpu(w, "a", kT0 + 1'100, 50.0);
  cpu(w, "b", kT0 + 2'900, 70.0);

  const auto all = w.stats("web", kMetricCpu, kT0, kT0 + 3'000);
  REQUIRE(all);
  CHECK(all->samples == 4);
  CHECK(all->average == Approx(40.0));
  CHECK(all->minimum == 10.0);
  CHECK(all->maximum == 70.0);
  CHECK(all->value(Statistic::Average) == Approx(40.0));
  CHECK(all->value(Statistic::Maximum) == 70.0);
  CHECK(all->value(Statistic::Minimum) == 10.0);

  // One-second buckets: [kT0 + 1 s, kT0 + 2 s) holds only the 50.
  const auto middle = w.stats("web", kMetricCpu, kT0 + 1'000, kT0 + 2'000);
  REQUIRE(middle);
  CHECK(middle->samples == 1);
  CHECK(middle->average == 50.0);
}

TEST_CASE("window edges: a bucket counts when its start lies in [from, to)") {
  MetricWindows w;
  cpu(w, "a", kT0 + 999, 1.0);    // bucket kT0
  cpu(w, "a", kT0 + 1'000, 2.0);  // bucket kT0 + 1 s
  cpu(w, "a", kT0 + 5'000, 3.0);  // bucket kT0 + 5 s

  auto s = w.stats("web", kMetricCpu, kT0, kT0 + 1'000);
  REQUIRE(s);
  CHECK(s->average == 1.0);
  s = w.stats("web", kMetricCpu, kT0 + 1, kT0 + 1'001);  // from rounds up to kT0 + 1 s, to includes it
  REQUIRE(s);
  CHECK(s->average == 2.0);
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0 + 1, kT0 + 1'000));  // no bucket starts in (kT0, kT0 + 1 s)
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0 + 5'000, kT0 + 5'000));  // empty window
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0 + 2'000, kT0 + 5'000));  // a gap: missing, not zero
  s = w.stats("web", kMetricCpu, kT0 + 2'000, kT0 + 5'001);
  REQUIRE(s);
  CHECK(s->average == 3.0);
}

TEST_CASE("missing data: unknown group, unknown metric, nothing in the window") {
  MetricWindows w;
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0, kT0 + 10'000));
  CHECK_FALSE(w.aggregate("web", kMetricCpu, kT0, kT0 + 10'000));
  CHECK(w.reporters_since("web", kMetricCpu, kT0) == 0);
  cpu(w, "a", kT0, 5.0);
  CHECK_FALSE(w.stats("web", kMetricMemory, kT0, kT0 + 10'000));
  CHECK_FALSE(w.stats("api", kMetricCpu, kT0, kT0 + 10'000));
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0 + 1'000, kT0 + 10'000));
}

TEST_CASE("first_sample_ms: the first second a metric was recorded") {
  MetricWindows w;
  CHECK_FALSE(w.first_sample_ms("web", kMetricCpu));
  cpu(w, "a", kT0 + 2'500, 1.0);
  CHECK(w.first_sample_ms("web", kMetricCpu) == kT0 + 2'000);
  cpu(w, "a", kT0 + 9'000, 1.0);
  cpu(w, "b", kT0 + 1'200, 1.0);  // a late report moves it back
  CHECK(w.first_sample_ms("web", kMetricCpu) == kT0 + 1'000);
  CHECK_FALSE(w.first_sample_ms("web", kMetricMemory));
}

TEST_CASE("bad samples are ignored") {
  MetricWindows w;
  const std::array<MetricSample, 4> samples{{{kMetricCpu, std::numeric_limits<double>::quiet_NaN()},
                                             {kMetricCpu, std::numeric_limits<double>::infinity()},
                                             {"", 3.0},
                                             {kMetricMemory, 40.0}}};
  w.record("web", "a", kT0, samples);
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0, kT0 + 1'000));
  REQUIRE(w.stats("web", kMetricMemory, kT0, kT0 + 1'000));
  CHECK(w.metrics_of("web") == std::vector<std::string>{"memory"});  // no cpu sample was valid
}

TEST_CASE("custom metrics are windows like the built-in ones") {
  MetricWindows w;
  const std::array<MetricSample, 3> samples{{{kMetricCpu, 20.0}, {"queue_depth", 120.0}, {kMetricTcpEstablished, 8.0}}};
  w.record("web", "a", kT0, samples);
  const auto q = w.aggregate("web", "queue_depth", kT0, kT0 + 1'000);
  REQUIRE(q);
  CHECK(q->stats.average == 120.0);
  CHECK(q->instances == 1);
}

TEST_CASE("distinct reporters: each instance counts once, at its latest report") {
  MetricWindows w;
  for (int s = 0; s < 10; ++s) {
    cpu(w, "a", kT0 + s * 1'000, 10.0);
    cpu(w, "a", kT0 + s * 1'000 + 500, 10.0);  // twice in a second
    if (s < 5) cpu(w, "b", kT0 + s * 1'000 + 300, 10.0);  // b stops after 5 s
    if (s % 3 == 0) cpu(w, "c", kT0 + s * 1'000 + 700, 10.0);  // c reports every 3 s
  }
  // Window of the last 4 s: a (every second) and c (at 9 s) reported, b not.
  const TimeMs now = kT0 + 10'000;
  const auto agg = w.aggregate("web", kMetricCpu, now - 4'000, now);
  REQUIRE(agg);
  CHECK(agg->instances == 2);
  CHECK(agg->stats.samples == 4 * 2 + 2);  // a twice a second, c at 6 s and 9 s
  CHECK(w.reporters_since("web", kMetricCpu, now - 10'000) == 3);
  CHECK(w.reporters_since("web", kMetricCpu, now - 1'000) == 2);  // a and c in the last second
  CHECK(w.reporters_since("web", kMetricCpu, now - 2'000) == 2);
  CHECK(w.reporters_since("web", kMetricCpu, now) == 0);

  // Samples of another group or metric do not count.
  cpu(w, "z", now - 500, 1.0, "api");
  CHECK(w.reporters_since("web", kMetricCpu, now - 4'000) == 2);
  CHECK(w.reporters_since("api", kMetricCpu, now - 4'000) == 1);
}

TEST_CASE("incomplete data is visible: fewer reporters than eligible instances") {
  MetricWindows w;
  const std::uint32_t eligible = 3;
  for (int s = 0; s < 5; ++s) {
    cpu(w, "a", kT0 + s * 1'000, 10.0);
    cpu(w, "b", kT0 + s * 1'000, 10.0);
  }
  const auto agg = w.aggregate("web", kMetricCpu, kT0, kT0 + 5'000);
  REQUIRE(agg);
  CHECK(agg->instances < eligible);
  cpu(w, "c", kT0 + 4'500, 10.0);
  CHECK(w.aggregate("web", kMetricCpu, kT0, kT0 + 5'000)->instances == eligible);
}

TEST_CASE("the ring drops samples older than the retention and survives long gaps") {
  MetricWindows w(10'000);  // 10 one-second buckets
  CHECK(w.retention_ms() == 10'000);
  for (int s = 0; s < 10; ++s) cpu(w, "a", kT0 + s * 1'000, static_cast<double>(s));
  auto st = w.stats("web", kMetricCpu, kT0, kT0 + 10'000);
  REQUIRE(st);
  CHECK(st->samples == 10);
  CHECK(st->average == Approx(4.5));

  // Two more seconds overwrite the two oldest buckets.
  cpu(w, "a", kT0 + 10'000, 100.0);
  cpu(w, "a", kT0 + 11'000, 100.0);
  st = w.stats("web", kMetricCpu, kT0, kT0 + 12'000);
  REQUIRE(st);
  CHECK(st->samples == 10);
  CHECK(st->minimum == 2.0);
  CHECK(st->maximum == 100.0);

  // A sample from before the retention (clock stepped back) is dropped.
  cpu(w, "a", kT0, 999.0);
  CHECK(w.stats("web", kMetricCpu, kT0, kT0 + 12'000)->maximum == 100.0);

  // A gap of many ring lengths: every old bucket is stale, nothing leaks in.
  const TimeMs later = kT0 + 1'000'000;
  cpu(w, "a", later, 7.0);
  cpu(w, "b", later, 9.0);
  st = w.stats("web", kMetricCpu, later - 9'000, later + 1'000);
  REQUIRE(st);
  CHECK(st->samples == 2);
  CHECK(st->average == 8.0);
  CHECK(w.reporters_since("web", kMetricCpu, later - 9'000) == 2);
  CHECK_FALSE(w.stats("web", kMetricCpu, later - 9'000, later));
  // A window asked for beyond the retention sees only what is kept.
  CHECK(w.stats("web", kMetricCpu, kT0, later + 1'000)->samples == 2);
}

TEST_CASE("a report from the past keeps the instance's later latest-report mark") {
  MetricWindows w;
  cpu(w, "a", kT0 + 5'000, 1.0);
  cpu(w, "a", kT0 + 3'000, 1.0);  // clock stepped back 2 s, within the retention
  CHECK(w.stats("web", kMetricCpu, kT0, kT0 + 6'000)->samples == 2);
  CHECK(w.reporters_since("web", kMetricCpu, kT0 + 4'000) == 1);
  CHECK(w.reporters_since("web", kMetricCpu, kT0) == 1);
}

TEST_CASE("forget_instance and remove_group") {
  MetricWindows w;
  cpu(w, "a", kT0, 1.0);
  cpu(w, "b", kT0, 3.0);
  w.forget_instance("web", "a");
  w.forget_instance("web", "nope");
  w.forget_instance("nope", "a");
  // Its samples stay where they belong.
  CHECK(w.stats("web", kMetricCpu, kT0, kT0 + 1'000)->average == 2.0);
  w.remove_group("web");
  CHECK_FALSE(w.stats("web", kMetricCpu, kT0, kT0 + 1'000));
  CHECK(w.metrics_of("web").empty());
  w.remove_group("web");
}

TEST_CASE("a statistic costs buckets, not instances: 2,000 instances, one-hour window") {
  MetricWindows w;
  std::vector<std::string> ids;
  for (int k = 0; k < 2'000; ++k) ids.push_back("i-" + std::to_string(k));
  for (int s = 0; s < 30; ++s) {
    for (std::size_t k = 0; k < ids.size(); ++k) cpu(w, ids[k], kT0 + s * 1'000 + static_cast<TimeMs>(k % 1'000), 50.0);
  }
  const auto agg = w.aggregate("web", kMetricCpu, kT0 + 30'000 - 3'600'000, kT0 + 30'000);
  REQUIRE(agg);
  CHECK(agg->stats.samples == 60'000);
  CHECK(agg->instances == 2'000);
  CHECK(agg->stats.average == 50.0);
}
