#include "coordinator/io/provider/process_table.hpp"

#include <charconv>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>

namespace tide::provider {
namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc{} && ptr == last;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  ProcStat stat;
  std::string_view pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!parse_number(pid_text, stat.pid)) return std::nullopt;

  // Fields after the command name start at field 3 (state).
  std::vector<std::string_view> fields;
  std::string_view rest = text.substr(close + 1);
  std::size_t pos = 0;
  while (pos < rest.size() && fields.size() < 20) {
    while (pos < rest.size() && (rest[pos] == ' ' || rest[pos] == '\n')) ++pos;
    const std::size_t start = pos;
    while (pos < rest.size() && rest[pos] != ' ' && rest[pos] != '\n') ++pos;
    if (pos > start) fields.push_back(rest.substr(start, pos - start));
  }
  // fields[0] is field 3 (state), fields[2] field 5 (pgrp), fields[3] field 6
  // (session), fields[19] field 22 (starttime).
  if (fields.size() < 20 || fields[0].size() != 1) return std::nullopt;
  stat.state = fields[0][0];
  if (!parse_number(fields[2], stat.pgrp) || !parse_number(fields[3], stat.session) ||
      !parse_number(fields[19], stat.start_time_ticks)) {
    return std::nullopt;
  }
  return stat;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return parse_proc_stat(text.str());
}

bool process_alive(pid_t pid, std::uint64_t start_time_ticks) {
  const auto stat = read_proc_stat(pid);
  return stat && stat->start_time_ticks == start_time_ticks && stat->state != 'Z' &&
         stat->state != 'X';
}

std::vector<pid_t> live_group_members(pid_t pgid, std::uint64_t leader_start_ticks) {
  std::vector<pid_t> members;
  if (pgid <= 1) return members;
  // While any process still uses pgid as its group, the kernel does not hand
  // that number out as a new pid. So if a process with the leader's pid exists
  // with another start time, our group is entirely gone.
  if (const auto leader = read_proc_stat(pgid);
      leader && leader->start_time_ticks != leader_start_ticks) {
    return members;
  }
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return members;
  while (const dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    const std::string_view name(entry->d_name);
    if (!parse_number(name, pid)) continue;
    const auto stat = read_proc_stat(pid);
    if (stat && stat->pgrp == pgid && stat->session == pgid && stat->state != 'Z' &&
        stat->state != 'X') {
      members.push_back(pid);
    }
  }
  closedir(dir);
  return members;
}

}  // namespace tide::provider
