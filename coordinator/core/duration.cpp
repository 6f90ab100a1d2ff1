#include "coordinator/core/duration.hpp"

#include <array>
#include <utility>

namespace tide::coordinator {
namespace {

// Longest unit first so that "ms" is not read as "m" followed by "s".
constexpr std::array<std::pair<std::string_view, std::int64_t>, 5> kUnits{
    {{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};

// Beyond this a duration means nothing to tide (and products stay far from
// overflow): 100 years.
constexpr std::int64_t kMaxMs = 100LL * 365 * 86'400'000;

}  // namespace

tl::expected<std::int64_t, std::string> parse_duration(std::string_view text, bool bare_seconds) {
  const auto bad = [&] {
    return tl::make_unexpected("'" + std::string(text) + "' is not a duration (e.g. 500ms, 10s, 5m, 1h, 1h30m)");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0;
  std::size_t pos = 0;
  bool any_unit = false;
  while (pos < text.size()) {
    std::int64_t value = 0;
    const std::size_t first = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      value = value * 10 + (text[pos] - '0');
      if (value > kMaxMs) return bad();
      ++pos;
    }
    if (pos == first) return bad();
    if (pos == text.size() && !any_unit && bare_seconds) return value * 1'000;
    std::int64_t scale = 0;
    for (const auto& [unit, ms] : kUnits) {
      if (text.substr(pos, unit.size()) == unit) {
        scale = ms;
        pos += unit.size();
        break;
      }
    }
    if (scale == 0) return bad();
    any_unit = true;
    total += value * scale;
    if (total > kMaxMs) return bad();
  }
  return total;
}

std::string typed_duration(std::int64_t ms) {
  if (ms % 1'000 != 0) return std::to_string(ms) + "ms";
  std::int64_t s = ms / 1'000;
  if (s == 0) return "0s";
  std::string out;
  if (s >= 3'600) {
    out += std::to_string(s / 3'600) + "h";
    s %= 3'600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace tide::coordinator
