// Parsers for the Linux files the agent reads at each report, and the
// sampler that turns counters into rates (pure logic: text in, numbers out).
//
// The io/ shell reads /proc/stat, /proc/meminfo, /proc/loadavg,
// /proc/net/dev, /proc/net/snmp and the cgroup v2 files, and hands their
// text to MetricsSampler::sample() with the time it read them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "protocol/messages.hpp"

namespace tide::agent {

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
};

// Keeps the previous counters so that rates can be computed. The first
// sample yields no rates (std::nullopt: "not measured", never zero).
class MetricsSampler {
 public:
  MetricsSampler(bool include_lo, unsigned online_cpus);

  [[nodiscard]] protocol::Metrics sample(const ProcTexts& texts, std::uint64_t now_ms);

 private:
  bool m_include_lo;
  unsigned m_cpus;
  std::optional<CpuTimes> m_cpu;
  std::optional<NetBytes> m_net;
  std::uint64_t m_net_ms = 0;
  std::optional<std::uint64_t> m_cg_usage_usec;
  std::uint64_t m_cg_ms = 0;
};

}  // namespace tide::agent
