// README.md's "A short tour of `tidectl`", run as it stands: the real
// tide-coordinator built here, configured by packaging/coordinator.yaml.example
// (only what must differ in a test is substituted), and every command of the
// tour's shell block run with bash from the source root, the built tidectl
// first on PATH. Each must exit 0, and the steps must have had their effect.
// A README that drifts from tidectl, the example configuration or the example
// fleet file fails here.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "system_harness.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;

const std::filesystem::path kSourceDir = TIDE_SOURCE_DIR;

// Replaces every line of `text` that matches `line` (a whole-line regex) by
// what `replace` makes of the match. The example file's shape is part of
// what the test relies on: a pattern matching no line fails loudly, naming it.
std::string substitute(const std::string& text, const std::string& line,
                       const std::function<std::string(const std::smatch&)>& replace) {
  const std::regex pattern(line);
  std::istringstream in(text);
  std::string out;
  int replaced = 0;
  for (std::string each; std::getline(in, each);) {
    std::smatch match;
    if (std::regex_match(each, match, pattern)) {
      each = replace(match);
      ++replaced;
    }
    out += each + "\n";
  }
  INFO("packaging/coordinator.yaml.example has no line matching /" << line
                                                                   << "/: its shape changed, update this test");
  REQUIRE(replaced > 0);
  return out;
}

// The commands of the fenced shell block under "## A short tour of `tidectl`":
// continuation lines joined, blank and comment lines left out.
std::vector<std::string> tour_commands() {
  std::istringstream readme(st::read_file(kSourceDir / "README.md"));
  std::vector<std::string> commands;
  std::string line, pending;
  enum class Where { Before, Heading, Block, After } where = Where::Before;
  while (where != Where::After && std::getline(readme, line)) {
    switch (where) {
      case Where::Before:
        if (line == "## A short tour of `tidectl`") where = Where::Heading;
        break;
      case Where::Heading:
        if (line.rfind("## ", 0) == 0) FAIL("README.md: no ```sh block under \"## A short tour of `tidectl`\"");
        if (line == "```sh") where = Where::Block;
        break;
      case Where::Block:
        if (line == "```") {
          where = Where::After;
          break;
        }
        if (!line.empty() && line.back() == '\\') {
          pending += line.substr(0, line.size() - 1);
          break;
        }
        line = pending + line;
        pending.clear();
        if (const auto first = line.find_first_not_of(" \t"); first != std::string::npos && line[first] != '#') {
          commands.push_back(line);
        }
        break;
      case Where::After:
        break;
    }
  }
  INFO("README.md: the tour's ```sh block under \"## A short tour of `tidectl`\" is missing or not closed");
  REQUIRE(where == Where::After);
  REQUIRE(pending.empty());
  return commands;
}

// Seconds after midnight UTC.
long utc_seconds_of_day() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(now).count() % 86'400);
}

// The tour puts schedules that fire at 11:00 and 13:00 Asia/Shanghai (03:00
// and 05:00 UTC; no daylight saving) and later lowers desired capacity,
// which a schedule firing in between can forbid (min 4, desired 4). A run
// that would straddle one waits until it has passed: at most 90 s.
void keep_clear_of_the_tours_schedules() {
  for (const long fire_s : {3L * 3600, 5L * 3600}) {
    const long ahead_s = fire_s - utc_seconds_of_day();
    if (ahead_s >= 0 && ahead_s < 90) {
      WARN("waiting " << ahead_s + 2 << " s for the tour's schedule at " << fire_s / 3600 << ":00 UTC to pass");
      std::this_thread::sleep_for(std::chrono::seconds(ahead_s + 2));
    }
  }
}

class TourCoordinator {
 public:
  TourCoordinator() : m_dir(st::make_temp_dir("tide-readme-tour")), m_reaper(m_dir) {
    m_api_port = st::free_port();
    const std::uint16_t agent_port = st::free_port();

    std::string config = st::read_file(kSourceDir / "packaging" / "coordinator.yaml.example");
    config = substitute(config, "state_dir: /var/lib/tide",
                        [&](const std::smatch&) { return "state_dir: " + (m_dir / "state").string(); });
    config = substitute(config, "(  listen: tcp://127\\.0\\.0\\.1:)7400",
                        [&](const std::smatch& m) { return m[1].str() + std::to_string(agent_port); });
    config = substitute(config, "(  listen_port: )7401",
                        [&](const std::smatch& m) { return m[1].str() + std::to_string(m_api_port); });
    // Its own loopback /24, so a run beside other fleets on this host never
    // hands out an address one of theirs uses.
    config = substitute(config, "(    address_prefix: )\"127\\.0\\.1\\.\"", [&](const std::smatch& m) {
      return m[1].str() + "\"127." + std::to_string(10 + (m_api_port / 256) % 200) + '.' +
             std::to_string(m_api_port % 256) + ".\"";
    });
    // Each backend's frontend on a free port, in the order the example
    // lists them ("business" first).
    config = substitute(config, "(\\s+bind_port: )[0-9]+", [&](const std::smatch& m) {
      m_frontend_ports.push_back(st::free_port());
      return m[1].str() + std::to_string(m_frontend_ports.back());
    });
    std::ofstream(m_dir / "coordinator.yaml") << config;

    m_coordinator = std::make_unique<st::Child>(
        std::vector<std::string>{std::string(TIDE_BIN_DIR) + "/tide-coordinator", "--config",
                                 (m_dir / "coordinator.yaml").string()},
        m_dir / "coordinator.log");
    if (!st::eventually(20s, [&] { return api("GET", "/healthz").status == 200; })) {
      FAIL("tide-coordinator did not answer /healthz within 20 s; its log:\n" << st::read_file(m_dir / "coordinator.log"));
    }
  }

  ~TourCoordinator() {
    if (m_coordinator) {
      m_coordinator->signal(SIGTERM);
      m_coordinator->wait(15s);
      m_coordinator.reset();
    }
    // The instances outlive the coordinator (the local provider detaches
    // them); they run in the state directory, where the reaper finds them.
    m_reaper.finish();
    std::error_code ec;
    if (std::getenv("TIDE_KEEP_SYSTEM_DIRS") == nullptr) std::filesystem::remove_all(m_dir, ec);
  }
  TourCoordinator(const TourCoordinator&) = delete;
  TourCoordinator& operator=(const TourCoordinator&) = delete;

  st::HttpResult api(const std::string& method, const std::string& path,
                     const std::optional<json>& body = std::nullopt) const {
    return st::http(method, endpoint(), path, body);
  }
  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_api_port); }
  [[nodiscard]] std::uint16_t business_frontend_port() const { return m_frontend_ports.front(); }
  [[nodiscard]] const std::filesystem::path& dir() const { return m_dir; }

  struct Run {
    int exit_code = -1;  // -1: killed or timed out
    std::string output;
  };
  // `command` with bash in the source root, after `preamble`; its environment
  // names this run's directory, so the reaper ends whatever it leaves.
  Run bash(const std::string& preamble, const std::string& command, int step) const {
    const auto log = m_dir / ("tour-" + std::to_string(step) + ".log");
    st::Child child({"bash", "-c", "cd \"$TIDE_TOUR_SOURCE_DIR\" || exit 99\n" + preamble + command}, log,
                    {{"PATH", std::string(TIDE_BIN_DIR) + ":" + (std::getenv("PATH") != nullptr ? std::getenv("PATH") : "/usr/bin:/bin")},
                     {"TIDE_TOUR_SOURCE_DIR", kSourceDir.string()},
                     {"TIDE_TOUR_RUN_DIR", m_dir.string()}});
    const auto status = child.wait(60s);
    Run run;
    if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
    run.output = st::read_file(log);
    return run;
  }

 private:
  std::filesystem::path m_dir;
  st::Reaper m_reaper;  // after m_dir: it watches it
  std::uint16_t m_api_port = 0;
  std::vector<std::uint16_t> m_frontend_ports;
  std::unique_ptr<st::Child> m_coordinator;
};

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::vector<std::string> names_of(const json& listed, const std::string& key) {
  std::vector<std::string> names;
  for (const auto& item : listed.value(key, json::array())) names.push_back(item.value("name", ""));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("README's tour of tidectl works verbatim on a coordinator with the example configuration", "[system]") {
  const std::vector<std::string> commands = tour_commands();
  keep_clear_of_the_tours_schedules();
  TourCoordinator coordinator;
  const std::string group_path = "/v1/groups/business-servers";
  const auto desired = [&] { return coordinator.api("GET", group_path).body.value("desired", -1); };

  // The tour's own `export TIDE_ENDPOINT=` line, pointed at this coordinator:
  // the only change made to the tour. Every command runs after the exports
  // that precede it, as in the reader's shell.
  const std::regex endpoint_export(R"(^export TIDE_ENDPOINT=\S+)");
  std::string preamble = "unset TIDE_TOKEN\n";
  bool endpoint_set = false;
  std::string terminated_id;
  std::string dry_run_output;
  int step = 0;
  for (std::string command : commands) {
    ++step;
    if (std::regex_search(command, endpoint_export)) {
      command = std::regex_replace(command, endpoint_export, "export TIDE_ENDPOINT=" + coordinator.endpoint(),
                                   std::regex_constants::format_first_only);
      endpoint_set = true;
    }
    const bool verification = std::regex_search(command, std::regex(R"(^tidectl group set business-servers --desired \d+)"));
    const bool terminate = command.rfind("tidectl instance terminate ", 0) == 0;
    const int desired_before = desired();
    if (terminate) {
      // The instance `tidectl instance list -g business-servers -q | head -n1`
      // names: the oldest live one.
      const json listed = coordinator.api("GET", "/v1/instances?group=business-servers").body;
      REQUIRE(!listed.value("instances", json::array()).empty());
      terminated_id = listed["instances"][0].value("id", "");
    }

    const auto run = coordinator.bash(preamble, command, step);
    INFO("tour step " << step << ": " << command << "\nexit status " << run.exit_code << ", output:\n" << run.output);
    REQUIRE(run.exit_code == 0);
    if (command.rfind("export ", 0) == 0) preamble += command + "\n";
    if (contains(command, "apply -f") && contains(command, "--dry-run")) dry_run_output = run.output;

    if (verification) {
      // The brief's verification: desired capacity one above what the steps
      // before left.
      CHECK(desired() == desired_before + 1);
    }
    if (terminate) {
      CHECK(desired() == desired_before - 1);
      CHECK(contains(run.output, terminated_id));
    }
  }
  REQUIRE(endpoint_set);
  INFO(st::read_file(coordinator.dir() / "coordinator.log"));

  {  // the schedules and policies exist
    CHECK(names_of(coordinator.api("GET", group_path + "/schedules").body, "schedules") ==
          std::vector<std::string>{"lunch-end", "lunch-start"});
    CHECK(names_of(coordinator.api("GET", group_path + "/policies").body, "policies") ==
          std::vector<std::string>{"cpu-50", "cpu-high", "cpu-low"});
  }

  {  // the example fleet file is what the tour built, plus the session servers; the dry run changed nothing
    INFO(dry_run_output);
    REQUIRE(!dry_run_output.empty());
    std::istringstream lines(dry_run_output);
    for (std::string line; std::getline(lines, line);) {
      if (contains(line, "business")) CHECK(line.rfind("unchanged ", 0) == 0);
    }
    CHECK(std::regex_search(dry_run_output, std::regex(R"(create +group +session-servers)")));
    CHECK(coordinator.api("GET", "/v1/groups/session-servers").status == 404);
  }

  {  // the terminated instance is gone
    REQUIRE(!terminated_id.empty());
    CHECK(st::eventually(60s, [&] {
      return coordinator.api("GET", "/v1/instances/" + terminated_id).body.value("state", "") == "terminated";
    }));
    const json listed = coordinator.api("GET", "/v1/instances?group=business-servers").body;
    for (const auto& instance : listed.value("instances", json::array())) CHECK(instance.value("id", "") != terminated_id);
  }

  {  // the launch configuration's command starts instances that serve through HAProxy
    const std::string frontend = "http://127.0.0.1:" + std::to_string(coordinator.business_frontend_port());
    CHECK(st::eventually(60s, [&] { return st::http("GET", frontend, "/").status == 200; }));
    CHECK(coordinator.api("GET", group_path).body.value("in_service", 0) >= 1);
  }
}
