// One line of /proc/<pid>/stat (proc(5)), parsed: what the agent needs to
// count an instance's processes and what the coordinator exports as its own
// process_* figures. Pure: the caller reads the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sys/types.h>
#include <tl/expected.hpp>

namespace tide {

struct ProcessStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t session = 0;
  std::uint64_t start_ticks = 0;     // starttime: clock ticks after boot
  std::uint64_t own_ticks = 0;       // utime + stime
  std::uint64_t children_ticks = 0;  // cutime + cstime: of the children it has waited for
  std::uint64_t rss_pages = 0;
  std::uint64_t vsize_bytes = 0;
};

// Parses one /proc/<pid>/stat line. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields after
// it are counted from the last ')'.
[[nodiscard]] tl::expected<ProcessStat, std::string> parse_process_stat(std::string_view text);

}  // namespace tide
