#include "agent/core/metrics.hpp"

#include <charconv>
#include <vector>

namespace tide::agent {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <typename F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (!f(text.substr(0, nl))) return;
    if (nl == std::string_view::npos) return;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

tl::expected<CpuTimes, std::string> parse_proc_stat(std::string_view text) {
  std::optional<CpuTimes> out;
  std::string error = "no \"cpu\" line";
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty() || f[0] != "cpu") return true;
    if (f.size() < 5) {
      error = "\"cpu\" line has fewer than 4 counters";
      return false;
    }
    CpuTimes t;
    // user nice system idle iowait irq softirq steal; guest time is already
    // included in user, so it is not added again.
    for (std::size_t i = 1; i < f.size() && i <= 8; ++i) {
      auto v = to_u64(f[i]);
      if (!v) {
        error = "\"cpu\" counter is not a number";
        return false;
      }
      t.total += *v;
      if (i == 4 || i == 5) t.idle += *v;
    }
    out = t;
    return false;
  });
  if (!out) return tl::make_unexpected(error);
  return *out;
}

tl::expected<MemInfo, std::string> parse_meminfo(std::string_view text) {
  std::optional<std::uint64_t> total, avail;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.size() >= 2) {
      if (f[0] == "MemTotal:") total = to_u64(f[1]);
      if (f[0] == "MemAvailable:") avail = to_u64(f[1]);
    }
    return !(total && avail);
  });
  if (!total || *total == 0) return tl::make_unexpected(std::string("no MemTotal"));
  if (!avail) return tl::make_unexpected(std::string("no MemAvailable"));
  return MemInfo{*total, *avail};
}

tl::expected<double, std::string> parse_loadavg(std::string_view text) {
  auto f = fields(trim(text));
  if (f.empty()) return tl::make_unexpected(std::string("empty loadavg"));
  double v = 0.0;
  auto [p, ec] = std::from_chars(f[0].data(), f[0].data() + f[0].size(), v);
  if (ec != std::errc{} || p != f[0].data() + f[0].size() || v < 0.0) {
    return tl::make_unexpected(std::string("load1 is not a number"));
  }
  return v;
}

tl::expected<NetBytes, std::string> parse_net_dev(std::string_view text, bool include_lo) {
  NetBytes sum;
  bool any = false;
  std::string error;
  for_each_line(text, [&](std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return true;  // the two header lines
    const auto name = trim(line.substr(0, colon));
    if (name.find('|') != std::string_view::npos) return true;
    auto f = fields(line.substr(colon + 1));
    if (f.size() < 9) {
      error = "interface " + std::string(name) + " has too few columns";
      return false;
    }
    auto rx = to_u64(f[0]);
    auto tx = to_u64(f[8]);
    if (!rx || !tx) {
      error = "interface " + std::string(name) + " has a non-numeric counter";
      return false;
    }
    any = true;
    if (name == "lo" && !include_lo) return true;
    sum.rx += *rx;
    sum.tx += *tx;
    return true;
  });
  if (!error.empty()) return tl::make_unexpected(error);
  if (!any) return tl::make_unexpected(std::string("no interface lines"));
  return sum;
}

tl::expected<std::uint32_t, std::string> parse_net_snmp_established(std::string_view text) {
  // Two "Tcp:" lines: the first names the columns, the second holds values.
  std::vector<std::string_view> header;
  std::optional<std::uint32_t> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty() || f[0] != "Tcp:") return true;
    if (header.empty()) {
      header = f;
      return true;
    }
    for (std::size_t i = 1; i < header.size() && i < f.size(); ++i) {
      if (header[i] == "CurrEstab") {
        auto v = to_u64(f[i]);
        if (v && *v <= UINT32_MAX) out = static_cast<std::uint32_t>(*v);
      }
    }
    return false;
  });
  if (!out) return tl::make_unexpected(std::string("no Tcp: CurrEstab"));
  return *out;
}

tl::expected<std::uint64_t, std::string> parse_flat_key(std::string_view text, std::string_view key) {
  std::optional<std::uint64_t> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.size() == 2 && f[0] == key) {
      out = to_u64(f[1]);
      return false;
    }
    return true;
  });
  if (!out) return tl::make_unexpected("no numeric \"" + std::string(key) + "\"");
  return *out;
}

tl::expected<std::uint64_t, std::string> parse_cgroup_cpu_usage_usec(std::string_view text) {
  return parse_flat_key(text, "usage_usec");
}

tl::expected<std::optional<std::uint64_t>, std::string> parse_single_value(std::string_view text) {
  const auto t = trim(text);
  if (t == "max") return std::optional<std::uint64_t>{};
  auto v = to_u64(t);
  if (!v) return tl::make_unexpected(std::string("not a number"));
  return std::optional<std::uint64_t>{*v};
}

tl::expected<MetricsScope, std::string> parse_metrics_scope(std::string_view text) {
  if (text == "host") return MetricsScope::Host;
  if (text == "session") return MetricsScope::Session;
  return tl::make_unexpected("must be host or session, got '" + std::string(text) + "'");
}

std::string_view to_string(MetricsScope scope) {
  switch (scope) {
    case MetricsScope::Host:
      return "host";
    case MetricsScope::Session:
      return "session";
  }
  return "?";
}

MetricsSampler::MetricsSampler(bool include_lo, HostUnits units)
    : m_include_lo(include_lo),
      m_units(units),
      m_instance_cpu(units.online_cpus, units.clock_ticks_per_s) {
  if (m_units.online_cpus == 0) m_units.online_cpus = 1;
}

protocol::Metrics MetricsSampler::sample(const ProcTexts& texts, std::uint64_t now_ms) {
  protocol::Metrics m;
  if (texts.instance) {
    m.cpu_pct = m_instance_cpu.sample(*texts.instance);
    if (texts.meminfo) {
      if (auto mem = parse_meminfo(*texts.meminfo)) {
        m.memory_pct = instance_memory_pct(texts.instance->processes, m_units.page_size, mem->total_kb);
      }
    }
  } else if (texts.stat) {
    if (auto cpu = parse_proc_stat(*texts.stat)) {
      if (m_cpu && cpu->total > m_cpu->total && cpu->idle >= m_cpu->idle) {
        const auto total = static_cast<double>(cpu->total - m_cpu->total);
        const auto idle = static_cast<double>(cpu->idle - m_cpu->idle);
        double pct = 100.0 * (total - idle) / total;
        m.cpu_pct = pct < 0.0 ? 0.0 : (pct > 100.0 ? 100.0 : pct);
      }
      m_cpu = *cpu;
    }
  }
  if (texts.meminfo && !texts.instance) {
    if (auto mem = parse_meminfo(*texts.meminfo)) {
      const auto avail = mem->available_kb > mem->total_kb ? mem->total_kb : mem->available_kb;
      m.memory_pct = 100.0 * static_cast<double>(mem->total_kb - avail) /
                     static_cast<double>(mem->total_kb);
    }
  }
  if (texts.loadavg) {
    if (auto l = parse_loadavg(*texts.loadavg)) m.load1 = *l;
  }
  if (texts.net_dev) {
    if (auto net = parse_net_dev(*texts.net_dev, m_include_lo)) {
      // Counters that went backwards (interface reset) give no rate this time.
      if (m_net && now_ms > m_net_ms && net->rx >= m_net->rx && net->tx >= m_net->tx) {
        const double dt_s = static_cast<double>(now_ms - m_net_ms) / 1000.0;
        m.net_in_bps = static_cast<double>(net->rx - m_net->rx) / dt_s;
        m.net_out_bps = static_cast<double>(net->tx - m_net->tx) / dt_s;
      }
      m_net = *net;
      m_net_ms = now_ms;
    }
  }
  if (texts.net_snmp) {
    if (auto e = parse_net_snmp_established(*texts.net_snmp)) m.tcp_established = *e;
  }
  if (texts.cgroup_cpu_stat) {
    if (auto usage = parse_cgroup_cpu_usage_usec(*texts.cgroup_cpu_stat)) {
      if (m_cg_usage_usec && now_ms > m_cg_ms && *usage >= *m_cg_usage_usec) {
        const double used_us = static_cast<double>(*usage - *m_cg_usage_usec);
        const double wall_us = static_cast<double>(now_ms - m_cg_ms) * 1000.0;
        // Share of the whole machine, like cpu_pct.
        m.custom["cgroup_cpu_pct"] = 100.0 * used_us / (wall_us * static_cast<double>(m_units.online_cpus));
      }
      m_cg_usage_usec = *usage;
      m_cg_ms = now_ms;
    }
  }
  if (texts.cgroup_memory_current) {
    if (auto cur = parse_single_value(*texts.cgroup_memory_current); cur && *cur) {
      std::uint64_t used = **cur;
      if (texts.cgroup_memory_stat) {
        // Page cache the kernel can drop at once is not memory pressure.
        if (auto inactive = parse_flat_key(*texts.cgroup_memory_stat, "inactive_file")) {
          used = *inactive > used ? 0 : used - *inactive;
        }
      }
      m.custom["cgroup_memory_bytes"] = static_cast<double>(used);
      if (texts.cgroup_memory_max) {
        if (auto max = parse_single_value(*texts.cgroup_memory_max); max && *max && **max > 0) {
          m.custom["cgroup_memory_pct"] = 100.0 * static_cast<double>(used) / static_cast<double>(**max);
        }
      }
    }
  }
  return m;
}

}  // namespace tide::agent
