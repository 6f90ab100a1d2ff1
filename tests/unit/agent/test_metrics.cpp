#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "agent/core/metrics.hpp"

using namespace tide::agent;

namespace {
std::string data(const std::string& name) {
  std::ifstream in(std::string(TIDE_TEST_DATA_DIR) + "/agent/" + name);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("/proc/stat", "[metrics]") {
  auto a = parse_proc_stat(data("proc_stat_1.txt"));
  REQUIRE(a);
  CHECK(a->total == 198273);
  CHECK(a->idle == 180361);
  auto bad = parse_proc_stat(data("proc_stat_garbage.txt"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "\"cpu\" counter is not a number");
  CHECK_FALSE(parse_proc_stat(""));
  CHECK_FALSE(parse_proc_stat("cpu 1 2"));
}

TEST_CASE("/proc/meminfo and loadavg and net/dev and net/snmp", "[metrics]") {
  auto mem = parse_meminfo(data("meminfo.txt"));
  REQUIRE(mem);
  CHECK(mem->total_kb == 24683620);
  CHECK(mem->available_kb == 24078692);
  CHECK_FALSE(parse_meminfo("MemTotal: 10 kB\n"));
  CHECK_FALSE(parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n"));

  auto load = parse_loadavg(data("loadavg.txt"));
  REQUIRE(load);
  CHECK(*load == Approx(0.65));
  CHECK_FALSE(parse_loadavg("abc 1 2"));
  CHECK_FALSE(parse_loadavg("-1 1 2"));

  auto net = parse_net_dev(data("net_dev.txt"), false);
  REQUIRE(net);
  CHECK(net->rx == 24344328);
  CHECK(net->tx == 62580);
  auto net_lo = parse_net_dev(data("net_dev.txt"), true);
  REQUIRE(net_lo);
  CHECK(net_lo->rx == 24344328 + 3267);
  CHECK_FALSE(parse_net_dev("eth0: 1 2 3\n", false));
  CHECK_FALSE(parse_net_dev("", false));

  auto est = parse_net_snmp_established(data("net_snmp.txt"));
  REQUIRE(est);
  CHECK(*est == 0);
  auto est2 = parse_net_snmp_established("Tcp: A CurrEstab B\nTcp: 1 17 3\n");
  REQUIRE(est2);
  CHECK(*est2 == 17);
  CHECK_FALSE(parse_net_snmp_established("Udp: x\nUdp: 1\n"));
}

TEST_CASE("cgroup v2 files", "[metrics]") {
  auto usage = parse_cgroup_cpu_usage_usec(data("cgroup_cpu_stat_1.txt"));
  REQUIRE(usage);
  CHECK(*usage == 1000000);
  auto inactive = parse_flat_key(data("cgroup_memory_stat.txt"), "inactive_file");
  REQUIRE(inactive);
  CHECK(*inactive == 20971520);
  auto max = parse_single_value("max\n");
  REQUIRE(max);
  CHECK_FALSE(*max);
  auto cur = parse_single_value(data("cgroup_memory_current.txt"));
  REQUIRE(cur);
  CHECK(**cur == 104857600);
  CHECK_FALSE(parse_single_value("12x"));
}

TEST_CASE("the sampler turns counters into rates", "[metrics]") {
  MetricsSampler sampler(false, HostUnits{2, 100, 4096});
  ProcTexts t1;
  t1.stat = data("proc_stat_1.txt");
  t1.meminfo = data("meminfo.txt");
  t1.loadavg = data("loadavg.txt");
  t1.net_dev = data("net_dev.txt");
  t1.net_snmp = data("net_snmp.txt");
  t1.cgroup_cpu_stat = data("cgroup_cpu_stat_1.txt");
  t1.cgroup_memory_current = data("cgroup_memory_current.txt");
  t1.cgroup_memory_stat = data("cgroup_memory_stat.txt");
  t1.cgroup_memory_max = data("cgroup_memory_max.txt");

  auto m1 = sampler.sample(t1, 10'000);
  CHECK_FALSE(m1.cpu_pct);  // first sample: no delta yet
  CHECK_FALSE(m1.net_in_bps);
  REQUIRE(m1.memory_pct);
  CHECK(*m1.memory_pct == Approx(100.0 * 604928.0 / 24683620.0));
  CHECK(m1.load1 == Approx(0.65));
  CHECK(m1.tcp_established == 0u);
  CHECK(m1.custom.at("cgroup_memory_bytes") == 83886080.0);
  CHECK(m1.custom.at("cgroup_memory_pct") == Approx(40.0));
  CHECK(m1.custom.count("cgroup_cpu_pct") == 0);

  ProcTexts t2 = t1;
  t2.stat = data("proc_stat_2.txt");
  t2.cgroup_cpu_stat = data("cgroup_cpu_stat_2.txt");
  t2.net_dev = "Inter-|\n face |\n lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
               " eth0: 24346328 0 0 0 0 0 0 0 63580 0 0 0 0 0 0 0\n";
  auto m2 = sampler.sample(t2, 11'000);
  REQUIRE(m2.cpu_pct);
  CHECK(*m2.cpu_pct == Approx(100.0 * 105.0 / 204.0));
  REQUIRE(m2.net_in_bps);
  CHECK(*m2.net_in_bps == Approx(2000.0));
  CHECK(*m2.net_out_bps == Approx(1000.0));
  CHECK(m2.custom.at("cgroup_cpu_pct") == Approx(25.0));  // 0.5 s of CPU in 1 s on 2 cores

  // Counters going backwards (a reset interface) give no rate, not a huge one.
  ProcTexts t3 = t1;
  auto m3 = sampler.sample(t3, 12'000);
  CHECK_FALSE(m3.net_in_bps);
  CHECK_FALSE(m3.cpu_pct);

  // Missing or garbage files give "not measured", never a crash.
  ProcTexts bad;
  bad.stat = "garbage";
  bad.meminfo = "";
  auto m4 = sampler.sample(bad, 13'000);
  CHECK_FALSE(m4.cpu_pct);
  CHECK_FALSE(m4.memory_pct);
  CHECK_FALSE(m4.load1);
}
