#include "agent/core/instance_processes.hpp"

#include <algorithm>

namespace tide::agent {

bool is_instance_process(const ProcessStat& process, pid_t agent_pid, pid_t agent_session) {
  return process.session == agent_session && process.pid != agent_pid && process.ppid != agent_pid;
}

double instance_memory_pct(const std::vector<ProcessStat>& processes, std::uint64_t page_size,
                           std::uint64_t mem_total_kb) {
  if (mem_total_kb == 0) return 0.0;
  std::uint64_t pages = 0;
  for (const auto& p : processes) pages += p.rss_pages;
  const double pct = 100.0 * static_cast<double>(pages) * static_cast<double>(page_size) /
                     (static_cast<double>(mem_total_kb) * 1024.0);
  return std::min(pct, 100.0);
}

InstanceCpuSampler::InstanceCpuSampler(unsigned online_cpus, std::uint64_t ticks_per_s)
    : m_cpus(online_cpus == 0 ? 1 : online_cpus),
      m_ticks_per_s(ticks_per_s == 0 ? 100 : ticks_per_s) {}

std::optional<double> InstanceCpuSampler::sample(const InstanceScan& scan) {
  std::map<Key, Seen> now;
  for (const auto& p : scan.processes) {
    now[Key{p.pid, p.start_ticks}] = Seen{p.ppid, p.own_ticks, p.children_ticks};
  }

  std::optional<double> pct;
  if (m_boot_ms && scan.boot_ms > *m_boot_ms) {
    // The counters last seen of processes that vanished, charged to the
    // nearest ancestor still here: its cutime + cstime took them in if it
    // waited for them (through any vanished processes in between).
    std::map<pid_t, Key> previous_by_pid;
    for (const auto& [key, seen] : m_seen) previous_by_pid[key.first] = key;
    std::map<Key, std::uint64_t> already_counted;
    for (const auto& [key, seen] : m_seen) {
      if (now.count(key) != 0) continue;
      pid_t ancestor = seen.ppid;
      for (std::size_t step = 0; step < m_seen.size(); ++step) {
        const auto it = previous_by_pid.find(ancestor);
        if (it == previous_by_pid.end()) break;  // the parent was not in the instance
        if (now.count(it->second) != 0) {
          already_counted[it->second] += seen.own_ticks + seen.children_ticks;
          break;
        }
        ancestor = m_seen.at(it->second).ppid;
      }
    }

    // A process that started no earlier than one tick before the previous
    // scan began used nothing before it.
    const double previous_scan_ticks =
        static_cast<double>(*m_boot_ms) * static_cast<double>(m_ticks_per_s) / 1000.0;
    std::uint64_t used_ticks = 0;
    for (const auto& [key, seen] : now) {
      const auto before = m_seen.find(key);
      if (before == m_seen.end()) {
        if (static_cast<double>(key.second + 1) >= previous_scan_ticks)
          used_ticks += seen.own_ticks + seen.children_ticks;
        continue;
      }
      const Seen& was = before->second;
      if (seen.own_ticks > was.own_ticks) used_ticks += seen.own_ticks - was.own_ticks;
      const std::uint64_t children =
          seen.children_ticks > was.children_ticks ? seen.children_ticks - was.children_ticks : 0;
      const auto counted = already_counted.find(key);
      const std::uint64_t subtract = counted == already_counted.end() ? 0 : counted->second;
      if (children > subtract) used_ticks += children - subtract;
    }
    const double used_s = static_cast<double>(used_ticks) / static_cast<double>(m_ticks_per_s);
    const double wall_s = static_cast<double>(scan.boot_ms - *m_boot_ms) / 1000.0;
    pct = std::min(100.0, 100.0 * used_s / (wall_s * static_cast<double>(m_cpus)));
  }
  m_seen = std::move(now);
  m_boot_ms = scan.boot_ms;
  return pct;
}

}  // namespace tide::agent
