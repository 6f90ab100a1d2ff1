#include "coordinator/core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace tide::coordinator {

namespace {

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
// Custom metric names are chosen by applications; a group keeps at most this
// many series so a misbehaving application cannot grow memory without bound.
constexpr std::size_t kMaxSeriesPerGroup = 256;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return -floor_div(-a, b); }

}  // namespace

bool metrics_eligible(const Instance& instance, const ScalingGroup& group, TimeMs now_ms) {
  return instance.state == LifecycleState::InService && instance.runtime.ready.value_or(false) &&
         instance.health == Health::Healthy && now_ms - instance.state_since_ms >= group.warmup_ms;
}

double WindowStats::value(Statistic statistic) const {
  switch (statistic) {
    case Statistic::Average: return average;
    case Statistic::Maximum: return maximum;
    case Statistic::Minimum: return minimum;
  }
  return average;
}

// One second of one series.
struct Bucket {
  std::int64_t second = kNever;  // which second this bucket holds; stale when it differs
  double sum = 0.0;
  double min = 0.0;
  double max = 0.0;
  std::uint32_t count = 0;
  std::uint32_t last_reporters = 0;  // instances whose latest report of this metric fell in this second
};

struct Series {
  std::string name;
  std::vector<Bucket> ring;  // retention seconds, indexed by second mod size
  std::int64_t newest = kNever;
  std::int64_t first = kNever;  // first second ever recorded

  Bucket& at(std::int64_t second) {
    const auto size = static_cast<std::int64_t>(ring.size());
    return ring[static_cast<std::size_t>(((second % size) + size) % size)];
  }
  const Bucket& at(std::int64_t second) const {
    const auto size = static_cast<std::int64_t>(ring.size());
    return ring[static_cast<std::size_t>(((second % size) + size) % size)];
  }
  std::int64_t oldest() const { return newest - static_cast<std::int64_t>(ring.size()) + 1; }
};

struct InstanceTrack {
  std::vector<std::int64_t> last_second;  // per series index; kNever = never reported
};

struct MetricWindows::GroupWindows {
  std::vector<Series> series;
  std::unordered_map<std::string, InstanceTrack, StringHash, std::equal_to<>> instances;

  const Series* find(std::string_view metric) const {
    for (const Series& s : series) {
      if (s.name == metric && !s.ring.empty()) return &s;
    }
    return nullptr;
  }
};

MetricWindows::MetricWindows(std::int64_t retention_ms)
    : m_retention_s(std::max<std::int64_t>(1, ceil_div(retention_ms, 1'000))) {}
MetricWindows::~MetricWindows() = default;
MetricWindows::MetricWindows(MetricWindows&&) noexcept = default;
MetricWindows& MetricWindows::operator=(MetricWindows&&) noexcept = default;

std::int64_t MetricWindows::retention_ms() const { return m_retention_s * 1'000; }

const MetricWindows::GroupWindows* MetricWindows::find_group(std::string_view group) const {
  const auto it = m_groups.find(group);
  return it == m_groups.end() ? nullptr : it->second.get();
}

void MetricWindows::record(std::string_view group, std::string_view instance_id, TimeMs now_ms,
                           std::span<const MetricSample> samples) {
  if (samples.empty()) return;
  auto git = m_groups.find(group);
  if (git == m_groups.end()) {
    git = m_groups.emplace(std::string(group), std::make_unique<GroupWindows>()).first;
  }
  GroupWindows& g = *git->second;
  auto iit = g.instances.find(instance_id);
  if (iit == g.instances.end()) iit = g.instances.emplace(std::string(instance_id), InstanceTrack{}).first;
  InstanceTrack& track = iit->second;
  const std::int64_t second = floor_div(now_ms, 1'000);

  for (const MetricSample& sample : samples) {
    if (sample.name.empty() || !std::isfinite(sample.value)) continue;
    std::size_t index = 0;
    while (index < g.series.size() && g.series[index].name != sample.name) ++index;
    if (index == g.series.size()) {
      if (g.series.size() >= kMaxSeriesPerGroup) continue;
      g.series.push_back(Series{std::string(sample.name), {}, kNever, kNever});
    }
    Series& s = g.series[index];
    if (s.ring.empty()) s.ring.resize(static_cast<std::size_t>(m_retention_s));
    if (s.newest != kNever && second < s.oldest()) continue;  // older than the retention
    s.newest = std::max(s.newest, second);
    s.first = s.first == kNever ? second : std::min(s.first, second);

    Bucket& b = s.at(second);
    if (b.second != second) b = Bucket{second, 0.0, sample.value, sample.value, 0, 0};
    b.sum += sample.value;
    b.min = std::min(b.min, sample.value);
    b.max = std::max(b.max, sample.value);
    ++b.count;

    // Move the instance's "latest report" mark to this second. A report
    // from the past (clock step) leaves the later mark where it is.
    if (track.last_second.size() <= index) track.last_second.resize(index + 1, kNever);
    std::int64_t& last = track.last_second[index];
    if (last != kNever && last >= second) continue;
    if (last != kNever) {
      Bucket& previous = s.at(last);
      if (previous.second == last && previous.last_reporters > 0) --previous.last_reporters;
    }
    ++b.last_reporters;
    last = second;
  }
}

std::optional<WindowStats> MetricWindows::stats(std::string_view group, std::string_view metric, TimeMs from_ms,
                                                TimeMs to_ms) const {
  const GroupWindows* g = find_group(group);
  const Series* s = g == nullptr ? nullptr : g->find(metric);
  if (s == nullptr) return std::nullopt;
  const std::int64_t first = std::max(ceil_div(from_ms, 1'000), s->oldest());
  const std::int64_t end = std::min(ceil_div(to_ms, 1'000), s->newest + 1);
  WindowStats out;
  double sum = 0.0;
  for (std::int64_t second = first; second < end; ++second) {
    const Bucket& b = s->at(second);
    if (b.second != second || b.count == 0) continue;
    if (out.samples == 0) {
      out.minimum = b.min;
      out.maximum = b.max;
    } else {
      out.minimum = std::min(out.minimum, b.min);
      out.maximum = std::max(out.maximum, b.max);
    }
    sum += b.sum;
    out.samples += b.count;
  }
  if (out.samples == 0) return std::nullopt;
  out.average = sum / static_cast<double>(out.samples);
  return out;
}

std::uint32_t MetricWindows::reporters_since(std::string_view group, std::string_view metric,
                                             TimeMs from_ms) const {
  const GroupWindows* g = find_group(group);
  const Series* s = g == nullptr ? nullptr : g->find(metric);
  if (s == nullptr) return 0;
  std::uint32_t total = 0;
  for (std::int64_t second = std::max(ceil_div(from_ms, 1'000), s->oldest()); second <= s->newest; ++second) {
    const Bucket& b = s->at(second);
    if (b.second == second) total += b.last_reporters;
  }
  return total;
}

std::optional<TimeMs> MetricWindows::first_sample_ms(std::string_view group, std::string_view metric) const {
  const GroupWindows* g = find_group(group);
  const Series* s = g == nullptr ? nullptr : g->find(metric);
  if (s == nullptr) return std::nullopt;
  return s->first * 1'000;
}

std::optional<Aggregate> MetricWindows::aggregate(std::string_view group, std::string_view metric, TimeMs from_ms,
                                                  TimeMs to_ms) const {
  auto st = stats(group, metric, from_ms, to_ms);
  if (!st) return std::nullopt;
  return Aggregate{*st, reporters_since(group, metric, from_ms)};
}

void MetricWindows::forget_instance(std::string_view group, std::string_view instance_id) {
  const auto git = m_groups.find(group);
  if (git == m_groups.end()) return;
  auto& instances = git->second->instances;
  if (const auto it = instances.find(instance_id); it != instances.end()) instances.erase(it);
}

void MetricWindows::remove_group(std::string_view group) {
  if (const auto it = m_groups.find(group); it != m_groups.end()) m_groups.erase(it);
}

std::vector<std::string> MetricWindows::metrics_of(std::string_view group) const {
  std::vector<std::string> names;
  if (const GroupWindows* g = find_group(group)) {
    for (const Series& s : g->series) names.push_back(s.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tide::coordinator
