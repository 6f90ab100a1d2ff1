// The CPU and memory of one instance's own processes, for agents that share
// a host with other instances (metrics.scope: session; the local provider).
//
// An instance is the session the agent runs in: the local provider starts
// each instance as one session led by its launcher shell, with the
// application and the agent inside it. A session rather than a process
// group, because applications that fork workers may move them into process
// groups of their own (a shell with job control, a supervisor that signals
// each worker's group) without leaving the session; only setsid() leaves it,
// and a process cannot join an existing session. The agent itself is not
// counted, nor its probes and hooks: run_process starts them with setsid(),
// and a child of the agent seen before its setsid() is excluded by its
// parent.
//
// Pure logic: the io/ shell reads /proc/<pid>/stat of every process, keeps
// those is_instance_process() accepts, and hands them over with the time of
// the scan.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <tl/expected.hpp>

#include "common/proc/process_stat.hpp"

namespace tide::agent {

// /proc/<pid>/stat as common/proc reads it.
using tide::parse_process_stat;
using tide::ProcessStat;

// Whether `process` belongs to the instance of the agent `agent_pid`, which
// runs in session `agent_session`: same session, and neither the agent nor a
// child of it (a probe or hook between fork and setsid).
[[nodiscard]] bool is_instance_process(const ProcessStat& process, pid_t agent_pid,
                                       pid_t agent_session);

// The instance's processes at one instant.
struct InstanceScan {
  std::vector<ProcessStat> processes;
  std::uint64_t boot_ms = 0;  // CLOCK_BOOTTIME when the scan began (the clock of starttime)
};

// The resident memory of `processes` as % of the host's MemTotal. Pages
// shared between processes (forked workers) count once per process, so this
// is an upper bound.
[[nodiscard]] double instance_memory_pct(const std::vector<ProcessStat>& processes,
                                         std::uint64_t page_size, std::uint64_t mem_total_kb);

// Turns successive scans into the instance's CPU as % of all cores (the unit
// of the host's `cpu`). Each process is known by (pid, start time), so a
// reused pid is a new process. Over one interval the instance used:
//   - what every process seen both times used itself (utime + stime);
//   - what its waited-for children added to cutime + cstime, less the
//     counters last seen of the processes that vanished under it (their CPU
//     until then was already counted; without this, a worker reaped by its
//     parent would count twice);
//   - all of a new process's counters, if it started after the previous scan
//     began (everything it used falls into the interval). A new process that
//     is older than that was missed before (unreadable for a moment): it is
//     only taken as the baseline, so it cannot make a spike.
// A process that leaves without a parent in the instance waiting for it
// (reparented, auto-reaped, setsid) takes nothing away: no counter can go
// negative, each difference is clamped at zero.
class InstanceCpuSampler {
 public:
  InstanceCpuSampler(unsigned online_cpus, std::uint64_t ticks_per_s);

  // nullopt on the first scan and when the clock did not advance.
  [[nodiscard]] std::optional<double> sample(const InstanceScan& scan);

 private:
  struct Seen {
    pid_t ppid = 0;
    std::uint64_t own_ticks = 0;
    std::uint64_t children_ticks = 0;
  };
  using Key = std::pair<pid_t, std::uint64_t>;  // pid, start_ticks

  unsigned m_cpus;
  std::uint64_t m_ticks_per_s;
  std::map<Key, Seen> m_seen;
  std::optional<std::uint64_t> m_boot_ms;
};

}  // namespace tide::agent
