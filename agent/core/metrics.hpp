// Parsers for the Linux files the agent reads at each report, and the
// sampler that turns counters into rates (pure logic: text in, numbers out).
//
// The io/ shell reads /proc/stat, /proc/meminfo, /proc/loadavg,
// /proc/net/dev, /proc/net/snmp and the cgroup v2 files, and hands their
// text to MetricsSampler::sample() with the time it read them; in the
// session scope also the instance's processes (instance_processes.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "agent/core/instance_processes.hpp"
#include "protocol/messages.hpp"

namespace tide::agent {

// What `cpu` and `memory` describe (metrics.scope): the whole host (a server
// of its own), or the processes of the agent's session (an instance sharing
// the host with others, as the local provider runs them).
enum class MetricsScope : std::uint8_t { Host, Session };

[[nodiscard]] tl::expected<MetricsScope, std::string> parse_metrics_scope(std::string_view text);
[[nodiscard]] std::string_view to_string(MetricsScope scope);

struct CpuTimes {
  std::uint64_t total = 0;  // jiffies, all states of the "cpu" line
  std::uint64_t idle = 0;   // idle + iowait
};
struct MemInfo {
  std::uint64_t total_kb = 0;
  std::uint64_t available_kb = 0;
};
struct NetBytes {
  std::uint64_t rx = 0;
  std::uint64_t tx = 0;
};

[[nodiscard]] tl::expected<CpuTimes, std::string> parse_proc_stat(std::string_view text);
[[nodiscard]] tl::expected<MemInfo, std::string> parse_meminfo(std::string_view text);
[[nodiscard]] tl::expected<double, std::string> parse_loadavg(std::string_view text);
// Sums every interface but "lo" (unless include_lo).
[[nodiscard]] tl::expected<NetBytes, std::string> parse_net_dev(std::string_view text,
                                                                 bool include_lo);
// Tcp: CurrEstab from /proc/net/snmp.
[[nodiscard]] tl::expected<std::uint32_t, std::string> parse_net_snmp_established(
    std::string_view text);
// usage_usec from cgroup v2 cpu.stat.
[[nodiscard]] tl::expected<std::uint64_t, std::string> parse_cgroup_cpu_usage_usec(
    std::string_view text);
// One key of a "key value" file such as memory.stat.
[[nodiscard]] tl::expected<std::uint64_t, std::string> parse_flat_key(std::string_view text,
                                                                       std::string_view key);
// A single number (memory.current) or "max" (memory.max: returns nullopt).
[[nodiscard]] tl::expected<std::optional<std::uint64_t>, std::string> parse_single_value(
    std::string_view text);

// Texts read at one instant; an absent file is an empty optional.
struct ProcTexts {
  std::optional<std::string> stat;
  std::optional<std::string> meminfo;
  std::optional<std::string> loadavg;
  std::optional<std::string> net_dev;
  std::optional<std::string> net_snmp;
  std::optional<std::string> cgroup_cpu_stat;
  std::optional<std::string> cgroup_memory_current;
  std::optional<std::string> cgroup_memory_stat;
  std::optional<std::string> cgroup_memory_max;
  // Session scope: the instance's processes. When set, `cpu` and `memory`
  // are theirs (memory as % of MemTotal from `meminfo`); `stat` is unused.
  std::optional<InstanceScan> instance;
};

// Constants of the host the sampler converts with.
struct HostUnits {
  unsigned online_cpus = 1;
  std::uint64_t clock_ticks_per_s = 100;  // sysconf(_SC_CLK_TCK)
  std::uint64_t page_size = 4096;         // bytes
};

// Keeps the previous counters so that rates can be computed. The first
// sample yields no rates (std::nullopt: "not measured", never zero).
class MetricsSampler {
 public:
  MetricsSampler(bool include_lo, HostUnits units);

  [[nodiscard]] protocol::Metrics sample(const ProcTexts& texts, std::uint64_t now_ms);

 private:
  bool m_include_lo;
  HostUnits m_units;
  InstanceCpuSampler m_instance_cpu;
  std::optional<CpuTimes> m_cpu;
  std::optional<NetBytes> m_net;
  std::uint64_t m_net_ms = 0;
  std::optional<std::uint64_t> m_cg_usage_usec;
  std::uint64_t m_cg_ms = 0;
};

}  // namespace tide::agent
