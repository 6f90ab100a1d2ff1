// Per-group history (coordinator/core/history.hpp): a group's sample from the
// fleet and the metric windows, ranges and their default step, downsampling
// into aligned buckets with gaps, and which store table a range is read from.
#include "coordinator/core/history.hpp"

#include <array>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/core/lb_metrics.hpp"

using namespace tide::coordinator;

namespace {

constexpr TimeMs kT0 = 1'800'000'000'000;  // a whole hour
constexpr TimeMs kS = 1'000;
constexpr TimeMs kMin = 60'000;

ScalingGroup group(std::uint32_t min, std::uint32_t desired, std::uint32_t max) {
  ScalingGroup g;
  g.name = "web";
  g.min = min;
  g.desired = desired;
  g.max = max;
  return g;
}

Instance instance(std::string id, LifecycleState state, std::optional<bool> ready = true,
                  bool in_lb = false) {
  Instance i;
  i.id = std::move(id);
  i.group = "web";
  i.state = state;
  i.runtime.ready = ready;
  i.runtime.in_lb = in_lb;
  return i;
}

// A raw sample at `t_ms` with `desired` and the metrics given.
HistorySample raw(TimeMs t_ms, std::uint32_t desired, std::map<std::string, double> metrics = {}) {
  HistorySample s;
  s.t_ms = t_ms;
  s.min = 1;
  s.max = 10;
  s.desired = desired;
  s.in_service = desired;
  s.healthy = desired;
  s.in_lb = desired;
  for (const auto& [name, value] : metrics) s.metrics[name] = HistoryValue{value, 1};
  return s;
}

void record(MetricWindows& windows, std::string_view metric, TimeMs at, double value,
            std::string_view id = "i-1") {
  const std::array<MetricSample, 1> samples{{{metric, value}}};
  windows.record("web", id, at, samples);
}

}  // namespace

// ---- sampling ----------------------------------------------------------------------------

TEST_CASE("sample_group counts capacity by state, health, readiness and rotation", "[history]") {
  const ScalingGroup g = group(1, 5, 8);
  Instance serving = instance("i-1", LifecycleState::InService, true, true);
  Instance out = instance("i-2", LifecycleState::OutOfRotation, false);
  Instance booting =
      instance("i-3", LifecycleState::Booting, std::nullopt);  // no report yet: health unknown
  Instance warming = instance("i-4", LifecycleState::Warming, false);
  Instance hooked = instance("i-5", LifecycleState::PendingLaunchHook, false);
  Instance unhealthy = instance("i-6", LifecycleState::InService, true, false);
  unhealthy.health = Health::Unhealthy;
  Instance draining = instance("i-7", LifecycleState::Draining, true);
  Instance gone =
      instance("i-8", LifecycleState::Terminated, true, true);  // terminal: counts for nothing
  const HistorySource source{
      &g, {&serving, &out, &booting, &warming, &hooked, &unhealthy, &draining, &gone}, {}};

  const HistorySample s = sample_group(source, MetricWindows{}, kT0);
  CHECK(s.t_ms == kT0);
  CHECK(s.min == 1);
  CHECK(s.desired == 5);
  CHECK(s.max == 8);
  CHECK(s.in_service == 2);
  CHECK(s.pending == 3);  // booting, warming, held by the launch hook
  CHECK(s.healthy == 5);  // all live ones that reported, but the unhealthy one
  CHECK(s.in_lb == 1);
  CHECK(s.metrics.empty());
}

TEST_CASE("sample_group averages each series over the last window; no data is no value",
          "[history]") {
  const ScalingGroup g = group(0, 1, 4);
  MetricWindows windows;
  record(windows, kMetricCpu, kT0 - 30 * kS, 99.0);  // before the window: left out
  record(windows, kMetricCpu, kT0 - 5 * kS, 40.0);
  record(windows, kMetricCpu, kT0 - 2 * kS, 60.0, "i-2");
  record(windows, kMetricRequestsPerInstance, kT0 - 3 * kS, 12.5);
  record(windows, "queue_depth", kT0 - 20 * kS, 3.0);  // only older samples: absent
  const HistorySource source{&g, {}, {PolicyMetric{"cpu", ""}, PolicyMetric{"orders", ""}}};

  const HistorySample s = sample_group(source, windows, kT0);
  CHECK(s.metrics.size() == 2);
  CHECK(s.metrics.at("cpu") == HistoryValue{50.0, 1});
  CHECK(s.metrics.at("requests_per_instance").mean == Approx(12.5));
  CHECK_FALSE(s.metrics.contains("queue_depth"));
  CHECK_FALSE(s.metrics.contains("orders"));  // a policy metric nobody reports
}

TEST_CASE(
    "sample_group takes a query's values under the policy's metric name, over their own window",
    "[history]") {
  const ScalingGroup g = group(0, 1, 4);
  MetricWindows windows;
  const std::string query = "sum(rate(http_requests_total[1m]))";
  const std::string series = metric_series("rps", query);
  const std::array<MetricSample, 1> value{{{series, 250.0}}};
  windows.record("web", "prometheus", kT0 - 25 * kS, value);  // polled every 30 s
  const HistorySource source{&g, {}, {PolicyMetric{"rps", query}}};

  CHECK(sample_group(source, windows, kT0).metrics.empty());  // not within 10 s
  const HistorySample s = sample_group(source, windows, kT0, HistoryWindows{10 * kS, 30 * kS});
  REQUIRE(s.metrics.size() == 1);
  CHECK(s.metrics.at("rps").mean == 250.0);
}

TEST_CASE("sample_groups gives one sample per group, each under its name", "[history]") {
  ScalingGroup web = group(0, 2, 4);
  ScalingGroup api = group(1, 1, 1);
  api.name = "api";
  const std::vector<HistorySource> sources{{&api, {}, {}}, {&web, {}, {}}};
  const auto samples = sample_groups(sources, MetricWindows{}, kT0);
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].group == "api");
  CHECK(samples[0].sample.desired == 1);
  CHECK(samples[1].group == "web");
  CHECK(samples[1].sample.desired == 2);
  CHECK(samples[1].sample.t_ms == kT0);
}

// ---- ranges -----------------------------------------------------------------------------

TEST_CASE("history_bucket floors to the step, before 1970 too", "[history]") {
  CHECK(history_bucket(kT0, 10 * kS) == kT0);
  CHECK(history_bucket(kT0 + 9'999, 10 * kS) == kT0);
  CHECK(history_bucket(kT0 + 10'000, 10 * kS) == kT0 + 10'000);
  CHECK(history_bucket(0, kMin) == 0);
  CHECK(history_bucket(-1, kMin) == -kMin);
  CHECK(history_bucket(-kMin, kMin) == -kMin);
}

TEST_CASE("the default step is the smallest multiple of 10 s that gives at most 720 points",
          "[history]") {
  struct Row {
    TimeMs span;
    std::int64_t step;
  };
  for (const Row& row : {Row{0, 10 * kS}, Row{kMin, 10 * kS}, Row{3'600 * kS, 10 * kS},
                         Row{7'190 * kS, 10 * kS},  // 719 steps from an aligned start: 720 buckets
                         Row{2 * 3'600 * kS, 20 * kS},
                         // 24 h is 720 steps of 2 min, but aligned buckets of 2 min touch
                         // 721 (a partial one at each end).
                         Row{24 * 3'600 * kS, 130 * kS}, Row{7 * 86'400 * kS, 850 * kS}}) {
    INFO("span " << row.span);
    const std::int64_t step = default_history_step(kT0, kT0 + row.span);
    CHECK(step == row.step);
    const HistoryRange range{kT0, kT0 + row.span, step};
    CHECK((range.end_ms() - range.first_ms()) / step <= kHistoryDefaultPoints);
  }
  // Unaligned ends touch one bucket more than the span holds; the next
  // multiple of 10 s brings it back under 720.
  for (TimeMs offset = 0; offset < 20 * kS; offset += 1'700) {
    const TimeMs since = kT0 + offset;
    const TimeMs until = since + 3 * 3'600 * kS;
    const std::int64_t step = default_history_step(since, until);
    INFO("offset " << offset << " step " << step);
    CHECK(step % kHistoryIntervalMs == 0);
    const HistoryRange range{since, until, step};
    CHECK((range.end_ms() - range.first_ms()) / step <= kHistoryDefaultPoints);
    const HistoryRange smaller{since, until, step - kHistoryIntervalMs};
    CHECK((smaller.end_ms() - smaller.first_ms()) / smaller.step_ms > kHistoryDefaultPoints);
  }
}

TEST_CASE("history_range refuses since after until and steps that are not multiples of 10 s",
          "[history]") {
  auto reversed = history_range(kT0 + 1, kT0, std::nullopt);
  REQUIRE_FALSE(reversed);
  CHECK(reversed.error().field == "since");

  for (const std::int64_t step : {std::int64_t{0}, -10 * kS, 5 * kS, 15 * kS, 10 * kS + 1}) {
    INFO("step " << step);
    auto bad = history_range(kT0, kT0 + 3'600 * kS, step);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().field == "step");
    CHECK_THAT(bad.error().message, Catch::Contains("multiple of 10s"));
  }
  auto too_many = history_range(kT0 - 30LL * 86'400 * kS, kT0, 10 * kS);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.error().field == "step");

  auto empty = history_range(kT0, kT0, std::nullopt);  // one instant: one bucket
  REQUIRE(empty);
  CHECK(empty->step_ms == 10 * kS);
  CHECK(empty->end_ms() - empty->first_ms() == 10 * kS);

  auto given = history_range(kT0 + 5 * kS, kT0 + 3'600 * kS, kMin);
  REQUIRE(given);
  CHECK(given->step_ms == kMin);
  CHECK(given->first_ms() == kT0);
  CHECK(given->end_ms() == kT0 + 3'660 * kS);
}

// ---- downsampling -------------------------------------------------------------------------

TEST_CASE("downsample at 10 s keeps each raw sample, on its bucket's start", "[history]") {
  const std::vector<HistorySample> samples{raw(kT0 + 3 * kS, 1, {{"cpu", 10}}),
                                           raw(kT0 + 13 * kS, 2, {{"cpu", 20}}),
                                           raw(kT0 + 23 * kS, 3, {{"cpu", 30}})};
  const auto points = downsample(samples, HistoryRange{kT0, kT0 + 30 * kS, 10 * kS});
  REQUIRE(points.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    HistorySample expected = samples[k];
    expected.t_ms = kT0 + static_cast<TimeMs>(k) * 10 * kS;
    CHECK(points[k] == expected);
  }
}

TEST_CASE(
    "downsample: capacity of the bucket's last sample, metrics the mean of the samples present",
    "[history]") {
  std::vector<HistorySample> samples;
  for (int k = 0; k < 6; ++k) {
    std::map<std::string, double> metrics{{"cpu", 10.0 * (k + 1)}};
    if (k % 3 == 0) metrics["orders"] = 100.0 + k;  // only in some samples
    samples.push_back(raw(kT0 + k * 10 * kS + 2 * kS, static_cast<std::uint32_t>(k + 1), metrics));
  }
  const auto points = downsample(samples, HistoryRange{kT0, kT0 + 59 * kS, kMin});
  REQUIRE(points.size() == 1);
  CHECK(points[0].t_ms == kT0);
  CHECK(points[0].desired == 6);  // the last sample's
  CHECK(points[0].in_service == 6);
  CHECK(points[0].metrics.at("cpu") == HistoryValue{35.0, 6});
  CHECK(points[0].metrics.at("orders") == HistoryValue{101.5, 2});  // (100 + 103) / 2
}

TEST_CASE("downsample leaves out empty buckets (a gap) and samples outside the range",
          "[history]") {
  const std::vector<HistorySample> samples{
      raw(kT0 - kS, 9),        // before the first bucket
      raw(kT0 + 5 * kS, 1),    // bucket 0
      raw(kT0 + 125 * kS, 2),  // bucket 2 (bucket 1 is a gap)
      raw(kT0 + 170 * kS, 3),  // bucket 2
      raw(kT0 + 4 * kMin, 4),  // after the last bucket
  };
  const auto points = downsample(samples, HistoryRange{kT0 + 30 * kS, kT0 + 179 * kS, kMin});
  REQUIRE(points.size() == 2);
  CHECK(points[0].t_ms == kT0);
  CHECK(points[0].desired == 1);
  CHECK(points[1].t_ms == kT0 + 2 * kMin);
  CHECK(points[1].desired == 3);
}

TEST_CASE("downsample of nothing, or of a range with no samples, is empty", "[history]") {
  CHECK(downsample({}, HistoryRange{kT0, kT0 + kMin, 10 * kS}).empty());
  const std::vector<HistorySample> samples{raw(kT0, 1)};
  CHECK(downsample(samples, HistoryRange{kT0 + kMin, kT0 + 2 * kMin, 10 * kS}).empty());
  CHECK(history_metric_names({}).empty());
}

TEST_CASE("downsample weights merged points by their sample counts", "[history]") {
  // A full minute (6 samples, mean 10) and a sparse one (1 sample, 80): a
  // two-minute point is (60 + 80) / 7 = 20, not the mean of means 45.
  HistorySample full = raw(kT0, 1);
  full.metrics["cpu"] = HistoryValue{10.0, 6};
  HistorySample sparse = raw(kT0 + kMin, 2);
  sparse.metrics["cpu"] = HistoryValue{80.0, 1};
  const std::vector<HistorySample> minutes{full, sparse};
  const auto points = downsample(minutes, HistoryRange{kT0, kT0 + kMin, 2 * kMin});
  REQUIRE(points.size() == 1);
  CHECK(points[0].metrics.at("cpu").mean == Approx(20.0));
  CHECK(points[0].metrics.at("cpu").samples == 7);
  CHECK(points[0].desired == 2);
}

TEST_CASE("minute rollups downsampled again equal the raw samples downsampled", "[history]") {
  // 30 minutes of samples every 10 s with a gap and a metric that comes and
  // goes; any step of whole minutes gives the same points from both.
  std::vector<HistorySample> samples;
  for (TimeMs t = kT0 + 4 * kS; t < kT0 + 30 * kMin; t += 10 * kS) {
    if (t > kT0 + 7 * kMin && t < kT0 + 9 * kMin) continue;  // the coordinator was down
    const auto n = static_cast<std::uint32_t>((t - kT0) / (10 * kS));
    std::map<std::string, double> metrics{{"cpu", static_cast<double>(n % 17)}};
    if (n % 4 == 0) metrics["sessions"] = static_cast<double>(n);
    samples.push_back(raw(t, n % 5, metrics));
  }
  const auto minutes = roll_up_minutes(samples, kT0, kT0 + 30 * kMin);
  CHECK(minutes.size() == 28);  // two minutes without samples
  for (const std::int64_t step : {kMin, 2 * kMin, 5 * kMin, 7 * kMin}) {
    INFO("step " << step);
    const HistoryRange range{kT0, kT0 + 30 * kMin - 1, step};
    const auto from_raw = downsample(samples, range);
    const auto from_minutes = downsample(minutes, range);
    REQUIRE(from_raw.size() == from_minutes.size());
    for (std::size_t k = 0; k < from_raw.size(); ++k) {
      CHECK(from_raw[k].t_ms == from_minutes[k].t_ms);
      CHECK(from_raw[k].desired == from_minutes[k].desired);
      REQUIRE(from_raw[k].metrics.size() == from_minutes[k].metrics.size());
      for (const auto& [name, value] : from_raw[k].metrics) {
        CHECK(from_minutes[k].metrics.at(name).mean == Approx(value.mean));
        CHECK(from_minutes[k].metrics.at(name).samples == value.samples);
      }
    }
  }
  CHECK(history_metric_names(minutes) == std::vector<std::string>{"cpu", "sessions"});
}

// ---- reads ---------------------------------------------------------------------------------

TEST_CASE("history_reads: minute rollups for whole-minute steps up to what is rolled up, raw after",
          "[history]") {
  const HistoryRange minutes{kT0 + 10 * kS, kT0 + 3'600 * kS, kMin};  // buckets [kT0, kT0 + 61 min)
  CHECK(history_reads(minutes, kT0 + 30 * kMin) ==
        std::vector<HistoryRead>{{HistoryTable::Minutes, kT0, kT0 + 30 * kMin},
                                 {HistoryTable::Raw, kT0 + 30 * kMin, kT0 + 61 * kMin}});
  // Nothing rolled up inside the range yet: raw only.
  CHECK(history_reads(minutes, kT0 - kMin) ==
        std::vector<HistoryRead>{{HistoryTable::Raw, kT0, kT0 + 61 * kMin}});
  // All of it rolled up (a past range).
  CHECK(history_reads(minutes, kT0 + 120 * kMin) ==
        std::vector<HistoryRead>{{HistoryTable::Minutes, kT0, kT0 + 61 * kMin}});
  // A rolled-up mark inside a minute counts from that minute's start.
  CHECK(history_reads(minutes, kT0 + 30 * kMin + 5 * kS).front().to_ms == kT0 + 30 * kMin);
  // Steps that are not whole minutes read the raw samples.
  const HistoryRange tens{kT0, kT0 + 3'600 * kS, 30 * kS};
  CHECK(history_reads(tens, kT0 + 120 * kMin) ==
        std::vector<HistoryRead>{{HistoryTable::Raw, kT0, kT0 + 3'630 * kS}});
}

TEST_CASE("select_metrics: the names of a comma-separated list, or none", "[history]") {
  const MetricSelection all;
  CHECK(all.keeps("cpu"));
  const MetricSelection two = select_metrics("queue,cpu,,cpu");
  CHECK_FALSE(two.all);
  CHECK(two.names == std::vector<std::string>{"cpu", "queue"});
  CHECK(two.keeps("cpu"));
  CHECK(two.keeps("queue"));
  CHECK_FALSE(two.keeps("memory"));
  const MetricSelection none = select_metrics("");
  CHECK_FALSE(none.keeps("cpu"));
  CHECK(none.names.empty());
}
