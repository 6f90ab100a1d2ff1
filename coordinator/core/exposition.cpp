#include "coordinator/core/exposition.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <limits>

#include "coordinator/core/lb_metrics.hpp"
#include "coordinator/core/policy_model.hpp"

namespace tide::coordinator {

// ---- LatencyHistogram ---------------------------------------------------------

void LatencyHistogram::record_us(std::uint64_t us) {
  const auto bound = std::lower_bound(kBoundsUs.begin(), kBoundsUs.end(), us);
  ++m_buckets[static_cast<std::size_t>(bound - kBoundsUs.begin())];
  ++m_count;
  // Saturates rather than wraps: a wrapped sum would make rate(_sum) negative.
  m_sum_us = us > std::numeric_limits<std::uint64_t>::max() - m_sum_us
                 ? std::numeric_limits<std::uint64_t>::max()
                 : m_sum_us + us;
}

std::uint64_t LatencyHistogram::quantile_us(double quantile) const {
  if (m_count == 0) return 0;
  const auto wanted = static_cast<std::uint64_t>(quantile * static_cast<double>(m_count) + 0.5);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    seen += m_buckets[i];
    if (seen >= wanted && seen > 0) return kBoundsUs[i];
  }
  return std::numeric_limits<std::uint64_t>::max();
}

void LatencyHistogram::reset() {
  m_buckets.fill(0);
  m_count = 0;
  m_sum_us = 0;
}

// ---- text format --------------------------------------------------------------

namespace {

// Backslash and line feed escaped, and the double quote when `quote`: the
// format escapes HELP text with the first two, label values with all three.
std::string escaped(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  return escaped(value, true);
}
std::string escape_help(std::string_view text) {
  return escaped(text, false);
}

std::string format_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  // Whole numbers below 2^53 are exact: write them without an exponent.
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    const auto [end, ec] =
        std::to_chars(buffer, buffer + sizeof buffer, static_cast<std::int64_t>(value));
    return ec == std::errc{} ? std::string(buffer, end) : std::string("NaN");
  }
  const auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest that reads back
  return ec == std::errc{} ? std::string(buffer, end) : std::string("NaN");
}

namespace {

bool name_char(char c, bool first, bool colon) {
  const bool letter =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return letter || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  return valid_name(name, true);
}
bool is_valid_label_name(std::string_view name) {
  return valid_name(name, false) && !name.starts_with("__");
}

void Exposition::family(std::string_view name, MetricType type, std::string_view help) {
  assert(is_valid_metric_name(name));
  assert(type != MetricType::Counter || name.ends_with("_total"));
  assert(std::find(m_families.begin(), m_families.end(), name) == m_families.end());
  m_families.emplace_back(name);
  m_current = name;
  m_type = type;
  m_text.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  m_text.append("# TYPE ").append(name).append(" ").append(type_name(type)).append("\n");
}

void Exposition::line(std::string_view suffix, const Labels& labels, const Label* extra,
                      std::string_view value) {
  m_text.append(m_current).append(suffix);
  if (!labels.empty() || extra != nullptr) {
    m_text += '{';
    bool first = true;
    const auto add = [&](const Label& label) {
      assert(is_valid_label_name(label.name));
      if (!first) m_text += ',';
      first = false;
      m_text.append(label.name).append("=\"").append(escape_label_value(label.value)).append("\"");
    };
    for (const Label& label : labels) add(label);
    if (extra != nullptr) add(*extra);
    m_text += '}';
  }
  m_text.append(" ").append(value).append("\n");
}

void Exposition::sample(const Labels& labels, double value) {
  assert(!m_current.empty() && m_type != MetricType::Histogram);
  line("", labels, nullptr, format_sample_value(value));
}

void Exposition::histogram(const Labels& labels, const LatencyHistogram& histogram) {
  assert(!m_current.empty() && m_type == MetricType::Histogram);
  const auto buckets = histogram.buckets();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    cumulative += buckets[i];
    const bool last = i + 1 == buckets.size();
    const Label le{"le", last ? std::string("+Inf")
                              : format_sample_value(
                                    static_cast<double>(LatencyHistogram::kBoundsUs[i]) / 1e6)};
    line("_bucket", labels, &le, format_sample_value(static_cast<double>(cumulative)));
  }
  line("_sum", labels, nullptr, format_sample_value(static_cast<double>(histogram.sum_us()) / 1e6));
  line("_count", labels, nullptr, format_sample_value(static_cast<double>(histogram.count())));
}

void Exposition::single(std::string_view name, MetricType type, std::string_view help,
                        double value) {
  family(name, type, help);
  sample({}, value);
}

// ---- group metrics --------------------------------------------------------------

namespace {

constexpr std::string_view kAverage =
    "Group average over the last 10 s (in-service, warmed-up instances) of ";

// Index i of kGroupFamilies answers kGroupMetricNames[i]; the custom family
// is last and answers every other name.
constexpr std::array<std::string_view, 11> kGroupMetricNames{kMetricCpu,
                                                             kMetricMemory,
                                                             kMetricLoad1,
                                                             kMetricNetIn,
                                                             kMetricNetOut,
                                                             kMetricTcpEstablished,
                                                             kMetricRequestsPerInstance,
                                                             kMetricResponseTime,
                                                             kMetricQueue,
                                                             kMetricHttp5xxRate,
                                                             kMetricSessionsPerInstance};

const std::array<GroupMetricFamily, 12> kGroupFamilies{{
    {"tide_group_cpu_ratio", 0.01, "the agents' CPU use (metric cpu, percent / 100).", false},
    {"tide_group_memory_ratio", 0.01, "the agents' memory use (metric memory, percent / 100).",
     false},
    {"tide_group_load1", 1.0, "the one-minute load average (metric load1).", false},
    {"tide_group_network_receive_bytes_per_second", 1.0,
     "bytes received per second (metric network_in).", false},
    {"tide_group_network_transmit_bytes_per_second", 1.0,
     "bytes sent per second (metric network_out).", false},
    {"tide_group_tcp_established_connections", 1.0,
     "established TCP connections (metric tcp_established).", false},
    {"tide_group_requests_per_instance_per_second", 1.0,
     "HTTP requests per second per instance, from HAProxy (metric requests_per_instance).", false},
    {"tide_group_response_time_seconds", 0.001,
     "HAProxy's mean response time (metric response_time_ms / 1000).", false},
    {"tide_group_queued_requests", 1.0, "requests queued in HAProxy per instance (metric queue).",
     false},
    {"tide_group_http_5xx_responses_per_second", 1.0,
     "5xx responses per second (metric http_5xx_rate).", false},
    {"tide_group_sessions_per_instance", 1.0,
     "open HAProxy sessions per instance (metric sessions_per_instance).", false},
    {"tide_group_custom_metric", 1.0,
     "a metric the application reports, in its own unit (label metric).", true},
}};

}  // namespace

GroupMetricFamily group_metric_family(std::string_view metric) {
  for (std::size_t i = 0; i < kGroupMetricNames.size(); ++i) {
    if (kGroupMetricNames[i] == metric) return kGroupFamilies[i];
  }
  return kGroupFamilies.back();
}

std::span<const GroupMetricFamily> group_metric_families() {
  return kGroupFamilies;
}

std::string_view group_metric_help_prefix() {
  return kAverage;
}

}  // namespace tide::coordinator
