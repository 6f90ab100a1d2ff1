// The product brief's scenario end to end: `scripts/demo --quick`, headless,
// on this build's binaries. Asserts what the demo's summary.json records —
// no failed request, the lunch schedule scaled both groups, the spike scaled
// business-servers out and back in by their request-rate policy (HAProxy's
// requests/s per server) and session-servers out by their load alarm, every
// such activity succeeded, the verification instance served, the report
// plots requests/s per server — and that nothing the demo started is left
// running. Both policies scale on figures other work on the machine does not
// move (the requests HAProxy counts, the share of time the applications
// spend on requests), so a busy machine does not decide the outcome; no
// check is on how fast they acted.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/system/coordinator/system_harness.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Processes whose command line or environment contains `needle`.
std::vector<std::string> processes_with(const std::string& needle) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(entry.path() / "cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    const std::string environ = read_file(entry.path() / "environ");
    if (cmdline.find(needle) != std::string::npos || environ.find(needle) != std::string::npos) {
      found.push_back(pid + ": " + cmdline);
    }
  }
  return found;
}

}  // namespace

TEST_CASE("scripts/demo --quick runs the brief's scenario with no failed request", "[system][demo]") {
  const fs::path root = fs::path(TIDE_TEST_DATA_DIR).parent_path().parent_path();
  REQUIRE(fs::exists(root / "scripts" / "demo"));
  char tmpl[] = "/tmp/tide-demo-test-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  // The demo makes its private directory in TMPDIR, here inside `dir`: if this
  // test is killed (ctest's time-out, Ctrl-C) before the demo cleans up, the
  // reaper kills everything that names `dir` or runs in it.
  tide::system_test::Reaper reaper(dir);
  // A base port away from the interactive demo's default (17500).
  const std::string port = "17700";
  const std::string command = "cd '" + root.string() + "' && TIDE_BIN_DIR='" + std::string(TIDE_BIN_DIR) +
                              "' TIDE_RESULTS_DIR='" + dir.string() + "' TMPDIR='" + dir.string() +
                              "' TIDE_DEMO_PORT=" + port +
                              " timeout -s INT 420 scripts/demo --quick < /dev/null > '" + (dir / "demo.log").string() +
                              "' 2>&1";
  const int status = std::system(command.c_str());
  const std::string log = read_file(dir / "demo.log");
  INFO("demo output:\n" << log);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  fs::path run;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) run = entry.path();
  }
  REQUIRE(!run.empty());
  REQUIRE(fs::exists(run / "summary.json"));
  const json summary = json::parse(read_file(run / "summary.json"));
  INFO("summary.json:\n" << summary.dump(2));

  // Traffic: several phases through the one frontend, none failed.
  CHECK(summary["requests"]["total"].get<long>() > 1000);
  CHECK(summary["requests"]["failed"].get<long>() == 0);
  CHECK(summary["requests"]["phases"].size() >= 3);

  // The verification: desired + 1, and the new instance answered through HAProxy.
  CHECK(summary["verification"]["served"].get<bool>());
  CHECK(!summary["verification"]["instance"].get<std::string>().empty());

  // Lunch: 1 attached + 2 (min 3) in each group, and back after it.
  for (const char* group : {"business-servers", "session-servers"}) {
    INFO(group);
    const json& g = summary["groups"][group];
    CHECK(g["lunch_start_fired"].get<bool>());
    CHECK(g["lunch_end_fired"].get<bool>());
    CHECK(g["max_in_service_during_lunch"].get<int>() >= 3);
    CHECK(g["all_policy_activities_successful"].get<bool>());
  }
  const auto acted = [&](const char* group, const char* policy, const char* direction) {
    const json& by = summary["groups"][group]["policies_acted"];
    return by.contains(policy) ? by[policy][direction].get<int>() : 0;
  };
  // The spike after lunch: ~230 requests/s (less on a busy machine) take
  // business-servers from the attached server to 4-6 at 50 per server and
  // back, out and in by the target-tracking policy on requests_per_instance;
  // the spike's first scale-out names it. (The CPU alarm pair may join in.)
  const json& business = summary["groups"]["business-servers"];
  CHECK(acted("business-servers", "rps-50", "scale_out") >= 1);
  CHECK(acted("business-servers", "rps-50", "scale_in") >= 1);
  CHECK(business["spike"]["max_desired"].get<int>() >= 3);
  CHECK(business["peak_requests_per_instance"].get<double>() > 50.0);
  bool first_spike_move_tracked = false;
  for (const json& a : business["policy_activities"]) {
    if (a["type"] != "scale_out" || a["s_after_spike_start"].is_null() || a["s_after_spike_start"].get<double>() < 0) {
      continue;
    }
    const std::string cause = a["cause"].get<std::string>();
    first_spike_move_tracked = cause.find("target tracking rps-50") != std::string::npos &&
                               cause.find("requests_per_instance") != std::string::npos;
    break;
  }
  CHECK(first_spike_move_tracked);
  // session-servers: the load alarm adds a server (busy ~80 % on one).
  CHECK(acted("session-servers", "load-high", "scale_out") >= 1);

  // The release: both groups' launched servers replaced by version 2 under
  // load (the failed count above includes that phase).
  for (const char* group : {"business-servers", "session-servers"}) {
    INFO(group);
    const json& rollout = summary["groups"][group]["rollout"];
    CHECK(rollout["state"].get<std::string>() == "succeeded");
    CHECK(rollout["replaced"].get<int>() >= 1);
    CHECK(rollout["to"].get<std::string>().ends_with(":2"));
  }

  // The report: an HTML page with the SVG timelines, from samples every 2 s.
  CHECK(summary["samples"].get<int>() >= 30);
  const std::string report = read_file(run / "report.html");
  CHECK(report.find("<svg") != std::string::npos);
  CHECK(report.find("business-servers: capacity and requests/s per server") != std::string::npos);
  CHECK(report.find("rps-50: target 50") != std::string::npos);

  // Nothing the demo started is left: its instances, agents and HAProxy name
  // its private directory; wrk names the frontend's port.
  const std::string work = summary["work_dir"].get<std::string>();
  REQUIRE(work.rfind((dir / "tide-demo-").string(), 0) == 0);
  CHECK(processes_with(work).empty());
  CHECK(processes_with("127.0.0.1:" + std::to_string(std::stoi(port) + 500)).empty());
  CHECK(!fs::exists(work));

  reaper.finish();
  std::error_code ec;
  fs::remove_all(dir, ec);
}
