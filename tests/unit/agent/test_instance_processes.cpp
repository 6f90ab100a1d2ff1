#include <string>

#include <catch2/catch.hpp>

#include "agent/core/instance_processes.hpp"
#include "agent/core/metrics.hpp"

using namespace tide::agent;

namespace {

// A /proc/<pid>/stat line as Linux 6 writes it, with the fields the agent
// reads set and the others plausible.
std::string stat_line(pid_t pid, const std::string& comm, pid_t ppid, pid_t session,
                      std::uint64_t utime, std::uint64_t stime, std::int64_t cutime,
                      std::int64_t cstime, std::uint64_t start, std::int64_t rss) {
  return std::to_string(pid) + " (" + comm + ") S " + std::to_string(ppid) + " " +
         std::to_string(session) + " " + std::to_string(session) + " 0 -1 4194560 1200 0 3 0 " +
         std::to_string(utime) + " " + std::to_string(stime) + " " + std::to_string(cutime) + " " +
         std::to_string(cstime) + " 20 0 1 0 " + std::to_string(start) + " 3133440 " +
         std::to_string(rss) +
         " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
}

// A process of session 100 that started at tick `start`.
ProcessStat proc(pid_t pid, pid_t ppid, std::uint64_t own, std::uint64_t children,
                 std::uint64_t start = 500) {
  return ProcessStat{pid, ppid, 100, start, own, children, 0};
}

// 2 cores, 100 ticks a second: 1 tick in a 1 s interval is 0.5 %.
constexpr double kPctPerTick = 0.5;

}  // namespace

TEST_CASE("a /proc/<pid>/stat line gives ids, start time, CPU ticks and RSS",
          "[metrics][instance]") {
  auto p = parse_process_stat(
      stat_line(4242, "tide-sample-app", 4200, 4100, 150, 30, 12, 8, 98765, 2048));
  REQUIRE(p);
  CHECK(p->pid == 4242);
  CHECK(p->ppid == 4200);
  CHECK(p->session == 4100);
  CHECK(p->own_ticks == 180);
  CHECK(p->children_ticks == 20);
  CHECK(p->start_ticks == 98765);
  CHECK(p->rss_pages == 2048);
  CHECK(p->vsize_bytes == 3133440);

  // The name is the process's to choose: spaces and parentheses in it do not
  // shift the fields after it.
  auto odd = parse_process_stat(stat_line(7, "a) b (c) S 1 1", 1, 5, 1, 2, 3, 4, 5, 6));
  REQUIRE(odd);
  CHECK(odd->ppid == 1);
  CHECK(odd->session == 5);
  CHECK(odd->own_ticks == 3);
  CHECK(odd->rss_pages == 6);

  // Signed counters that read negative count as nothing.
  auto negative = parse_process_stat(stat_line(8, "x", 1, 1, 1, 1, -5, 2, 5, -1));
  REQUIRE(negative);
  CHECK(negative->children_ticks == 2);
  CHECK(negative->rss_pages == 0);
}

TEST_CASE("a malformed /proc/<pid>/stat line is an error, never a crash", "[metrics][instance]") {
  const std::string good = stat_line(4242, "app", 1, 1, 1, 1, 1, 1, 1, 1);
  CHECK_FALSE(parse_process_stat(""));
  CHECK_FALSE(parse_process_stat("4242 app S 1 1"));
  CHECK_FALSE(parse_process_stat(") 4242 ("));
  CHECK_FALSE(parse_process_stat("x (app) S 1 1 1"));
  CHECK(parse_process_stat(good.substr(0, good.find(" 18446744073709551615"))));  // ends at rss
  for (std::size_t cut = 0; cut + 1 < good.find(" 18446744073709551615"); ++cut) {
    INFO(good.substr(0, cut));
    CHECK_FALSE(parse_process_stat(good.substr(0, cut)));
  }
  auto letters = parse_process_stat("12 (app) S 1 1 1 0 -1 0 0 0 0 0 x 1 1 1 20 0 1 0 5 3 6");
  REQUIRE_FALSE(letters);
  CHECK(letters.error() == "a field is not a number");
}

TEST_CASE("the instance is the agent's session without the agent and its children",
          "[metrics][instance]") {
  const pid_t agent = 50, session = 40;
  CHECK(is_instance_process(ProcessStat{40, 1, session}, agent, session));   // the launcher
  CHECK(is_instance_process(ProcessStat{60, 40, session}, agent, session));  // the application
  CHECK(is_instance_process(ProcessStat{61, 1, session}, agent, session));   // an orphaned worker
  CHECK_FALSE(is_instance_process(ProcessStat{50, 40, session}, agent, session));  // the agent
  CHECK_FALSE(is_instance_process(ProcessStat{70, 50, session}, agent,
                                  session));  // a probe before setsid()
  CHECK_FALSE(is_instance_process(ProcessStat{71, 70, 70}, agent, session));  // ... and after it
  CHECK_FALSE(is_instance_process(ProcessStat{80, 1, 80}, agent, session));   // another instance
}

TEST_CASE("metrics.scope names host or session", "[metrics][instance]") {
  CHECK(parse_metrics_scope("host") == MetricsScope::Host);
  CHECK(parse_metrics_scope("session") == MetricsScope::Session);
  auto bad = parse_metrics_scope("Session");
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "must be host or session, got 'Session'");
  CHECK(to_string(MetricsScope::Session) == "session");
}

TEST_CASE("instance CPU: what the processes used, as % of all cores", "[metrics][instance]") {
  InstanceCpuSampler cpu(2, 100);
  CHECK_FALSE(cpu.sample(InstanceScan{{proc(10, 1, 100, 0), proc(11, 10, 50, 0)}, 10'000}));

  SECTION("steady processes") {
    // 50 + 30 ticks in 1 s on 2 cores.
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 150, 0), proc(11, 10, 80, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(80 * kPctPerTick));
    // Over 2 s the same ticks are half the rate.
    pct = cpu.sample(InstanceScan{{proc(10, 1, 230, 0), proc(11, 10, 80, 0)}, 13'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(80 * kPctPerTick / 2));
  }
  SECTION("a worker waited for by its parent counts once") {
    // 11 used 10 more ticks and exited; 10 waited for it: its cutime grew by
    // all 60 of 11's ticks, 50 of which were counted already.
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 100, 60)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(10 * kPctPerTick));
  }
  SECTION("a worker born and gone between two scans counts through its parent") {
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 100, 25), proc(11, 10, 50, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(25 * kPctPerTick));
  }
  SECTION("a subtree gone at once counts once, through the ancestor that waited") {
    InstanceCpuSampler tree(2, 100);
    (void)tree.sample(
        InstanceScan{{proc(10, 1, 0, 0), proc(11, 10, 40, 0), proc(12, 11, 30, 0)}, 10'000});
    // 12 used 5 more, 11 used 5 more and waited for 12, 10 waited for 11.
    auto pct = tree.sample(InstanceScan{{proc(10, 1, 0, 45 + 35)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(10 * kPctPerTick));
  }
  SECTION("a process that leaves without being waited for takes nothing away") {
    // 11 was reparented out of the instance (or setsid()): the sum of the
    // counters drops by 50, the rate is what 10 used.
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 120, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(20 * kPctPerTick));
    // An auto-reaped child: the parent's cutime does not grow; no negative.
    pct = cpu.sample(InstanceScan{{proc(10, 1, 120, 0)}, 12'000});
    REQUIRE(pct);
    CHECK(*pct == 0.0);
  }
  SECTION("a reused pid is a new process") {
    // Pid 11 exited (not waited for) and a new process got its pid after
    // the previous scan (start tick 1005 > 1000): only its 7 ticks count.
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 100, 0), proc(11, 10, 7, 0, 1005)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(7 * kPctPerTick));
  }
  SECTION("a process missed before is a baseline, not a spike") {
    // 12 started long ago (tick 500) but was unreadable at the last scan.
    auto pct = cpu.sample(
        InstanceScan{{proc(10, 1, 100, 0), proc(11, 10, 50, 0), proc(12, 1, 9000, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == 0.0);
    pct = cpu.sample(
        InstanceScan{{proc(10, 1, 100, 0), proc(11, 10, 50, 0), proc(12, 1, 9040, 0)}, 12'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(40 * kPctPerTick));
  }
  SECTION("counters that go backwards give nothing, and become the baseline") {
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 90, 0), proc(11, 10, 50, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == 0.0);
    pct = cpu.sample(InstanceScan{{proc(10, 1, 100, 0), proc(11, 10, 50, 0)}, 12'000});
    REQUIRE(pct);
    CHECK(*pct == Approx(10 * kPctPerTick));
  }
  SECTION("no time passed: no rate; more than all cores: 100") {
    CHECK_FALSE(cpu.sample(InstanceScan{{proc(10, 1, 150, 0), proc(11, 10, 50, 0)}, 10'000}));
    auto pct = cpu.sample(InstanceScan{{proc(10, 1, 1000, 0), proc(11, 10, 50, 0)}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == 100.0);
  }
  SECTION("an instance with no process left uses nothing") {
    auto pct = cpu.sample(InstanceScan{{}, 11'000});
    REQUIRE(pct);
    CHECK(*pct == 0.0);
  }
}

TEST_CASE("session scope: cpu and memory are the instance's, the rest the host's",
          "[metrics][instance]") {
  MetricsSampler sampler(false, HostUnits{2, 100, 4096});
  ProcTexts t;
  t.stat = "cpu 1 0 0 0 0 0 0 0\n";  // the host's: not used in this scope
  t.meminfo = "MemTotal: 1048576 kB\nMemAvailable: 10 kB\n";
  t.loadavg = "0.65 0.5 0.4 1/100 200\n";
  auto with_rss = [](std::vector<ProcessStat> processes, std::uint64_t pages) {
    for (auto& p : processes) p.rss_pages = pages;
    return processes;
  };
  t.instance = InstanceScan{with_rss({proc(10, 1, 100, 0), proc(11, 10, 50, 0)}, 16384), 10'000};
  auto m1 = sampler.sample(t, 10'000);
  CHECK_FALSE(m1.cpu_pct);
  REQUIRE(m1.memory_pct);
  CHECK(*m1.memory_pct == Approx(12.5));  // 2 x 64 MiB of 1 GiB
  REQUIRE(m1.load1);
  CHECK(*m1.load1 == Approx(0.65));

  t.stat = "cpu 500 0 0 0 0 0 0 0\n";
  t.instance = InstanceScan{with_rss({proc(10, 1, 120, 0), proc(11, 10, 50, 0)}, 16384), 11'000};
  auto m2 = sampler.sample(t, 11'000);
  REQUIRE(m2.cpu_pct);
  CHECK(*m2.cpu_pct == Approx(20 * kPctPerTick));

  CHECK(instance_memory_pct({}, 4096, 1048576) == 0.0);
  CHECK(instance_memory_pct(with_rss({proc(10, 1, 0, 0)}, 1u << 30), 4096, 1048576) == 100.0);
  CHECK(instance_memory_pct(with_rss({proc(10, 1, 0, 0)}, 1), 4096, 0) == 0.0);
}
