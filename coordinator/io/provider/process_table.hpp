// Reading /proc to tell whether the processes a provider started still run.
//
// A pid alone is not an identity: the kernel reuses pids. A process is named
// by (pid, start time), the start time being field 22 of /proc/<pid>/stat in
// clock ticks since boot. Zombies count as dead: nobody may reap them here
// (PID 1 of a container is not always a reaper), yet they run no code.
//
// These functions do blocking file reads of /proc (in-memory, microseconds);
// the providers call them from the libuv thread pool, not the loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace tide::provider {

struct ProcStat {
  pid_t pid = 0;
  char state = '?';                   // R, S, D, Z, T, ...
  pid_t pgrp = 0;
  pid_t session = 0;
  std::uint64_t start_time_ticks = 0;  // field 22, clock ticks since boot
};

// Parses the text of /proc/<pid>/stat (the command name may hold spaces and
// parentheses, so fields are counted from the last ')').
[[nodiscard]] std::optional<ProcStat> parse_proc_stat(std::string_view text);

[[nodiscard]] std::optional<ProcStat> read_proc_stat(pid_t pid);

// True when the process exists, is not a zombie, and started at start_time_ticks.
[[nodiscard]] bool process_alive(pid_t pid, std::uint64_t start_time_ticks);

// Non-zombie members of process group pgid that belong to the session
// led by the same pid (tide's instances are session leaders). Empty when the
// group's leader pid was reused by an unrelated process (its start time differs
// from leader_start_ticks): then none of the group is ours.
[[nodiscard]] std::vector<pid_t> live_group_members(pid_t pgid, std::uint64_t leader_start_ticks);

}  // namespace tide::provider
