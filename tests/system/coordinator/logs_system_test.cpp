// The coordinator's and agents' logs as an operator reads them: a time and a
// level on every line (or journald's priority prefix when stderr is the
// journal), HAProxy's own lines marked as HAProxy's, one warning for a dead
// instance, and a clean stop that says so (docs/packaging.md, "Logs").
#include <signal.h>
#include <sys/stat.h>

#include <regex>
#include <sstream>

#include "fleet_fixture.hpp"

namespace {

using namespace tide::system_test;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The first in-service instance of group "web" and the pid of its application.
std::pair<std::string, pid_t> in_service_victim(const Fleet& fleet) {
  const auto listed = fleet.api("GET", "/v1/instances?group=web").body;
  for (const auto& i : listed.value("instances", json::array())) {
    if (i.value("state", "") != "in_service") continue;
    const std::string provider_id = i.value("provider_id", "");
    for (const pid_t pid : st::processes_matching("tide-sample-app")) {
      std::error_code ec;
      const auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
      if (!ec && cwd.filename() == provider_id) return {i.value("id", ""), pid};
    }
  }
  return {"", 0};
}

// Scales the group to 0 and stops the coordinator with SIGTERM.
void scale_in_and_stop(Fleet& fleet) {
  REQUIRE(fleet.set_desired(0) == 200);
  REQUIRE(st::eventually(30s, [&] { return fleet.live_instances() == 0; }));
  fleet.stop_coordinator();
}

}  // namespace

TEST_CASE("coordinator log: a time and a level on every line, HAProxy's lines marked, one warning for a killed "
          "instance, a clean stop",
          "[system][logs]") {
  Fleet fleet;
  fleet.start_coordinator();
  fleet.create_group(2, 200);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 2; }));
  const auto [victim, pid] = in_service_victim(fleet);
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  // The victim is gone from the group and its replacement serves.
  REQUIRE(st::eventually(40s, [&, victim = victim] {
    const auto listed = fleet.api("GET", "/v1/instances?group=web").body;
    int in_service = 0;
    for (const auto& i : listed.value("instances", json::array())) {
      if (i.value("id", "") == victim) return false;
      if (i.value("state", "") == "in_service") ++in_service;
    }
    return in_service == 2;
  }));
  scale_in_and_stop(fleet);

  const std::string log = fleet.log();
  INFO(log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
  const auto lines = lines_of(log);
  REQUIRE(lines.size() > 10);
  const std::regex plain(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} )"
                         R"((trace|debug|info|warning|error|critical) .*)");
  int warnings_naming_victim = 0;
  bool haproxy_line = false;
  for (const auto& line : lines) {
    INFO(line);
    CHECK(std::regex_match(line, plain));
    if (line.find(" warning ") != std::string::npos && line.find(victim) != std::string::npos) {
      ++warnings_naming_victim;
    }
    // HAProxy's master says so when it forks its worker.
    if (std::regex_search(line, std::regex(R"( info haproxy\[\d+\]: New worker \(\d+\) forked$)"))) haproxy_line = true;
  }
  CHECK(warnings_naming_victim == 1);
  CHECK(haproxy_line);
  // No bare HAProxy line ("[NOTICE]   (pid) : ...") slipped through.
  CHECK(log.find("[NOTICE]") == std::string::npos);
  CHECK(log.find(" info stopping (signal 15)") != std::string::npos);
  CHECK(log.find(" info HAProxy stopped") != std::string::npos);
  CHECK(log.find("restarting") == std::string::npos);
  CHECK(lines.back().find(" info stopped") != std::string::npos);
}

TEST_CASE("coordinator log under journald: sd-daemon priority prefixes and no time stamp; an agent whose stderr is "
          "a file keeps time stamps",
          "[system][logs]") {
  Fleet fleet;
  // What systemd does for StandardError=journal: JOURNAL_STREAM names the
  // device and inode of the stream stderr is.
  const auto log_path = fleet.dir() / "coordinator.log";
  std::ofstream(log_path).flush();
  struct stat st {};
  REQUIRE(::stat(log_path.c_str(), &st) == 0);
  fleet.start_coordinator({{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
  fleet.create_group(1, 200);
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));
  const auto listed = fleet.api("GET", "/v1/instances?group=web").body;
  REQUIRE(listed.value("instances", json::array()).size() == 1);
  const std::string provider_id = listed["instances"][0].value("provider_id", "");
  // The agent inherited JOURNAL_STREAM, but its stderr is its own file.
  std::filesystem::path agent_log;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(fleet.dir() / "state")) {
    if (entry.is_directory() && entry.path().filename() == provider_id) agent_log = entry.path() / "agent.log";
  }
  REQUIRE(std::filesystem::exists(agent_log));
  const std::string agent_text = st::read_file(agent_log);
  INFO("agent.log:\n" << agent_text);
  const auto agent_lines = lines_of(agent_text);
  REQUIRE_FALSE(agent_lines.empty());
  for (const auto& line : agent_lines) {
    INFO(line);
    CHECK(std::regex_match(line, std::regex(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} \w+ .*)")));
  }
  scale_in_and_stop(fleet);

  const std::string log = fleet.log();
  INFO(log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
  const auto lines = lines_of(log);
  REQUIRE(lines.size() > 5);
  for (const auto& line : lines) {
    INFO(line);
    CHECK(std::regex_match(line, std::regex(R"(^<[0-7]>.*)")));
    CHECK_FALSE(std::regex_search(line, std::regex(R"(^<\d>\d{4}-\d{2}-\d{2}T)")));
  }
  CHECK(log.find("<6>admin API on http://") != std::string::npos);
  CHECK(std::regex_search(log, std::regex(R"(<6>haproxy\[\d+\]: New worker \(\d+\) forked)")));
  CHECK(log.find("<6>stopping (signal 15)") != std::string::npos);
  CHECK(lines.back() == "<6>stopped");
}
