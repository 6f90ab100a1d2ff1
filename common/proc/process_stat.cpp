#include "common/proc/process_stat.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

namespace tide {
namespace {

template <typename T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// cutime and cstime are signed in the kernel's format; a negative value would
// be a kernel oddity, taken as nothing rather than refusing the line.
std::optional<std::uint64_t> to_ticks(std::string_view s) {
  const auto v = to_number<std::int64_t>(s);
  if (!v) return std::nullopt;
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, *v));
}

}  // namespace

tl::expected<ProcessStat, std::string> parse_process_stat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return tl::make_unexpected(std::string("no (comm) field"));
  }
  ProcessStat out;
  std::string_view pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  const auto pid = to_number<pid_t>(pid_text);
  if (!pid || *pid <= 0) return tl::make_unexpected(std::string("pid is not a number"));
  out.pid = *pid;

  // Fields 3 (state) to 24 (rss), numbered as in proc(5).
  constexpr std::size_t kFirst = 3, kLast = 24;
  std::array<std::string_view, kLast + 1> field{};
  std::size_t n = kFirst;
  std::string_view rest = text.substr(close + 1);
  while (n <= kLast) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
    if (rest.empty()) break;
    const auto end = std::min(rest.find(' '), rest.find('\n'));
    field[n++] = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (n <= kLast)
    return tl::make_unexpected("only " + std::to_string(n - 1) + " fields, rss is field 24");

  const auto ppid = to_number<pid_t>(field[4]);
  const auto session = to_number<pid_t>(field[6]);
  const auto utime = to_ticks(field[14]);
  const auto stime = to_ticks(field[15]);
  const auto cutime = to_ticks(field[16]);
  const auto cstime = to_ticks(field[17]);
  const auto start = to_number<std::uint64_t>(field[22]);
  const auto vsize = to_number<std::uint64_t>(field[23]);
  const auto rss = to_number<std::int64_t>(field[24]);
  if (!ppid || !session || !utime || !stime || !cutime || !cstime || !start || !vsize || !rss) {
    return tl::make_unexpected(std::string("a field is not a number"));
  }
  out.ppid = *ppid;
  out.session = *session;
  out.own_ticks = *utime + *stime;
  out.children_ticks = *cutime + *cstime;
  out.start_ticks = *start;
  out.vsize_bytes = *vsize;
  out.rss_pages = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *rss));
  return out;
}

}  // namespace tide
