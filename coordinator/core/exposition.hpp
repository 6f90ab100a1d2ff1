// The Prometheus text exposition format (version 0.0.4) and the cumulative
// latency histogram behind the coordinator's /metrics.
//
// Debian 12 packages no Prometheus client library for C++ (no
// prometheus-cpp), so this is a small writer of our own. It does what the
// format asks and `promtool check metrics` checks: every family has one HELP
// and one TYPE line and its samples follow them contiguously; a family is
// written once; label values are escaped (backslash, double quote, line
// feed) and HELP text too (backslash, line feed); counters end in `_total`;
// a histogram has cumulative `_bucket{le="..."}` series ending with
// `le="+Inf"`, then `_sum` and `_count`. Values are written so that they
// parse back to the same double (`+Inf`, `-Inf`, `NaN` spelled as the format
// wants). Pure: no clock, no I/O; the shell gathers the figures.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tide::coordinator {

// A histogram of durations with fixed buckets, recorded in microseconds so
// that 10,000 observations a second cost no allocation and no floating
// point. Cumulative since it was created: Prometheus computes rates and
// quantiles (histogram_quantile) from its buckets, and series of several
// coordinators add up.
class LatencyHistogram {
 public:
  // Upper bounds of the finite buckets, in microseconds (5 µs .. 10 s); the
  // +Inf bucket follows them.
  static constexpr std::array<std::uint64_t, 24> kBoundsUs{
      5,      10,      20,      50,      100,       200,       300,       500,
      750,    1'000,   2'000,   3'000,   5'000,     7'500,     10'000,    20'000,
      50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};

  void record_us(std::uint64_t us);
  // The upper bound (µs) of the bucket in which the `quantile` (0..1) of the
  // samples falls: an upper bound of the true quantile, never an estimate
  // below it. UINT64_MAX when it falls in the +Inf bucket; 0 when empty.
  [[nodiscard]] std::uint64_t quantile_us(double quantile) const;
  [[nodiscard]] std::uint64_t count() const { return m_count; }
  [[nodiscard]] std::uint64_t sum_us() const { return m_sum_us; }
  // Samples per bucket (not cumulative); the last one is the +Inf bucket.
  [[nodiscard]] std::span<const std::uint64_t> buckets() const { return m_buckets; }
  void reset();

 private:
  std::array<std::uint64_t, kBoundsUs.size() + 1> m_buckets{};
  std::uint64_t m_count = 0;
  std::uint64_t m_sum_us = 0;
};

enum class MetricType : std::uint8_t {
  Counter,    // "counter": name ends in _total
  Gauge,      // "gauge"
  Histogram,  // "histogram"
};

struct Label {
  std::string_view name;
  std::string value;
};
using Labels = std::vector<Label>;

// `value` with backslash, double quote and line feed escaped, as a label
// value is written between double quotes.
[[nodiscard]] std::string escape_label_value(std::string_view value);
// `text` with backslash and line feed escaped, as HELP text is written.
[[nodiscard]] std::string escape_help(std::string_view text);
// A sample value: integers without a fraction, others with enough digits to
// read back the same double, "+Inf", "-Inf" and "NaN".
[[nodiscard]] std::string format_sample_value(double value);
// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, without ':' for label names.
[[nodiscard]] bool is_valid_metric_name(std::string_view name);
[[nodiscard]] bool is_valid_label_name(std::string_view name);

// Writes families one after another. Programming errors (a family written
// twice, an invalid name, a counter without _total, a sample outside its
// family) are bugs and assert; nothing here depends on input from outside
// except label values, which are escaped.
class Exposition {
 public:
  // Starts a family: its HELP and TYPE lines. Samples of it follow.
  void family(std::string_view name, MetricType type, std::string_view help);
  // One sample of the current counter or gauge family.
  void sample(const Labels& labels, double value);
  // One series of the current histogram family: its buckets (cumulative,
  // seconds), _sum (seconds) and _count, under `labels`.
  void histogram(const Labels& labels, const LatencyHistogram& histogram);

  // A whole family of one unlabelled sample.
  void single(std::string_view name, MetricType type, std::string_view help, double value);

  [[nodiscard]] const std::string& text() const { return m_text; }
  // The family names written so far, in order.
  [[nodiscard]] const std::vector<std::string>& families() const { return m_families; }

 private:
  void line(std::string_view suffix, const Labels& labels, const Label* extra,
            std::string_view value);

  std::string m_text;
  std::vector<std::string> m_families;
  std::string m_current;
  MetricType m_type = MetricType::Gauge;
};

// How a group metric (a policy's metric name) appears on /metrics: one gauge
// family per metric with its unit in the name, values converted to base
// units (docs/metrics.md). Custom metrics share one family
// with a `metric` label; their unit is the application's.
struct GroupMetricFamily {
  std::string_view family;  // e.g. "tide_group_cpu_ratio"
  double scale = 1.0;       // multiply the group's average by this
  std::string_view help;
  bool custom = false;  // tide_group_custom_metric{metric="..."}
};
[[nodiscard]] GroupMetricFamily group_metric_family(std::string_view metric);
// Every family group_metric_family() can answer, the custom one last.
[[nodiscard]] std::span<const GroupMetricFamily> group_metric_families();
// What every group metric family's HELP text starts with; `help` completes it.
[[nodiscard]] std::string_view group_metric_help_prefix();

}  // namespace tide::coordinator
