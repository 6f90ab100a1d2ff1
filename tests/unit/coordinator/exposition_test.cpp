// The Prometheus text writer behind /metrics (coordinator/core/exposition.hpp):
// escaping, value formatting, histograms with cumulative buckets, _sum and
// _count, and the mapping of group metrics to families with units.
#include "coordinator/core/exposition.hpp"

#include <limits>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "coordinator/core/lb_metrics.hpp"
#include "coordinator/core/policy_model.hpp"

using namespace tide::coordinator;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE(
    "label values escape backslash, double quote and line feed; HELP escapes backslash and line "
    "feed",
    "[exposition]") {
  CHECK(escape_label_value("plain-name_1.2") == "plain-name_1.2");
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("say \"x\"\\ then\nmore") == "say \"x\"\\\\ then\\nmore");

  Exposition out;
  out.family("tide_test_total", MetricType::Counter, "Two\nlines.");
  out.sample({{"group", "we\"b\\\n"}}, 3);
  CHECK(out.text() ==
        "# HELP tide_test_total Two\\nlines.\n"
        "# TYPE tide_test_total counter\n"
        "tide_test_total{group=\"we\\\"b\\\\\\n\"} 3\n");
}

TEST_CASE("values: integers without a fraction, others read back exactly, and the special values",
          "[exposition]") {
  CHECK(format_sample_value(0) == "0");
  CHECK(format_sample_value(42) == "42");
  CHECK(format_sample_value(-7) == "-7");
  CHECK(format_sample_value(0.25) == "0.25");
  CHECK(format_sample_value(0.0065) == "0.0065");
  CHECK(std::stod(format_sample_value(1.0 / 3.0)) == 1.0 / 3.0);
  CHECK(format_sample_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_sample_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_sample_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(std::stod(format_sample_value(1e300)) == 1e300);
}

TEST_CASE("names: metric names may hold colons, label names not, and neither starts with a digit",
          "[exposition]") {
  CHECK(is_valid_metric_name("tide_group_desired"));
  CHECK(is_valid_metric_name("job:tide_x:rate5m"));
  CHECK_FALSE(is_valid_metric_name(""));
  CHECK_FALSE(is_valid_metric_name("1tide"));
  CHECK_FALSE(is_valid_metric_name("tide-x"));
  CHECK(is_valid_label_name("group"));
  CHECK_FALSE(is_valid_label_name("a:b"));
  CHECK_FALSE(is_valid_label_name("__name__"));
}

TEST_CASE("a histogram has cumulative buckets in seconds ending at +Inf, then _sum and _count",
          "[exposition]") {
  LatencyHistogram histogram;
  histogram.record_us(4);      // le 5e-06
  histogram.record_us(6'532);  // le 0.0075
  histogram.record_us(6'532);
  histogram.record_us(20'000'000);  // past every finite bound: +Inf
  Exposition out;
  out.family("tide_x_seconds", MetricType::Histogram, "X.");
  out.histogram({{"group", "web"}}, histogram);
  const auto lines = lines_of(out.text());
  REQUIRE(lines.size() == 2 + LatencyHistogram::kBoundsUs.size() + 1 + 2);
  CHECK(lines[2] == "tide_x_seconds_bucket{group=\"web\",le=\"5e-06\"} 1");
  CHECK(lines[3] == "tide_x_seconds_bucket{group=\"web\",le=\"1e-05\"} 1");
  // Cumulative: every bucket counts the samples of those below it.
  CHECK(lines[2 + 12] == "tide_x_seconds_bucket{group=\"web\",le=\"0.005\"} 1");
  CHECK(lines[2 + 13] == "tide_x_seconds_bucket{group=\"web\",le=\"0.0075\"} 3");
  CHECK(lines[2 + 23] == "tide_x_seconds_bucket{group=\"web\",le=\"10\"} 3");
  CHECK(lines[2 + 24] == "tide_x_seconds_bucket{group=\"web\",le=\"+Inf\"} 4");
  CHECK(lines[2 + 25] == "tide_x_seconds_sum{group=\"web\"} 20.013068");
  CHECK(lines[2 + 26] == "tide_x_seconds_count{group=\"web\"} 4");
  // Bucket bounds as quantile upper bounds, for the benchmarks' printouts.
  CHECK(histogram.quantile_us(0.5) == 7'500);
  CHECK(histogram.quantile_us(1.0) == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("a histogram's sum saturates instead of wrapping", "[exposition]") {
  LatencyHistogram histogram;
  histogram.record_us(std::numeric_limits<std::uint64_t>::max());
  histogram.record_us(10);
  CHECK(histogram.count() == 2);
  CHECK(histogram.sum_us() == std::numeric_limits<std::uint64_t>::max());
  histogram.reset();
  CHECK(histogram.count() == 0);
  CHECK(histogram.sum_us() == 0);
  CHECK(histogram.quantile_us(0.5) == 0);
}

TEST_CASE("families are written in order, each once, with unlabelled samples", "[exposition]") {
  Exposition out;
  out.single("tide_agent_sessions", MetricType::Gauge, "Connected agents.", 2);
  out.family("tide_group_desired", MetricType::Gauge,
             "Desired.");  // a family without samples is allowed
  CHECK(out.families() == std::vector<std::string>{"tide_agent_sessions", "tide_group_desired"});
  CHECK(out.text() ==
        "# HELP tide_agent_sessions Connected agents.\n# TYPE tide_agent_sessions "
        "gauge\ntide_agent_sessions 2\n"
        "# HELP tide_group_desired Desired.\n# TYPE tide_group_desired gauge\n");
}

TEST_CASE("group metrics map to one family each with the unit in its name, values in base units",
          "[exposition]") {
  const auto cpu = group_metric_family(kMetricCpu);
  CHECK(cpu.family == "tide_group_cpu_ratio");
  CHECK(cpu.scale == Approx(0.01));
  CHECK_FALSE(cpu.custom);
  const auto response = group_metric_family(kMetricResponseTime);
  CHECK(response.family == "tide_group_response_time_seconds");
  CHECK(response.scale == Approx(0.001));
  CHECK(group_metric_family(kMetricNetIn).family == "tide_group_network_receive_bytes_per_second");
  CHECK(group_metric_family(kMetricRequestsPerInstance).family ==
        "tide_group_requests_per_instance_per_second");
  const auto custom = group_metric_family("orders_waiting");
  CHECK(custom.custom);
  CHECK(custom.family == "tide_group_custom_metric");
  // Every family is distinct and a valid name; only the last is custom.
  std::set<std::string_view> names;
  for (const auto& family : group_metric_families()) {
    CHECK(is_valid_metric_name(family.family));
    CHECK(names.insert(family.family).second);
    CHECK(family.custom == (family.family == group_metric_families().back().family));
  }
}
