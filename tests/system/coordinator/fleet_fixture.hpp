// The fixture of the coordinator system tests: one tide-coordinator with its
// own state dir, ports, loopback /24 and process tag; everything it started
// is stopped when the fixture goes, and — through its Reaper — when the test
// process dies without getting there (ctest's time-out, Ctrl-C).
#pragma once

#include <charconv>
#include <fstream>

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/core/exposition.hpp"
#include "system_harness.hpp"

namespace tide::system_test {

using namespace std::chrono_literals;
using nlohmann::json;
namespace st = tide::system_test;

// One coordinator with its own state dir, ports and process tag.
class Fleet {
 public:
  // `lb_options`: extra `load_balancer:` lines, e.g. "  keep_running_on_stop: true\n".
  explicit Fleet(const std::string& lb_options = "")
      : m_dir(st::make_temp_dir("tide-system")), m_reaper(m_dir) {
    m_api_port = st::free_port();
    m_agent_port = st::free_port();
    m_frontend_port = st::free_port();
    m_tag = "tide-system-" + std::to_string(::getpid()) + "-" + std::to_string(m_api_port);
    m_lb_options = lb_options;
    write_agent_wrapper();
    write_config();
  }

  // Top-level sections added to coordinator.yaml (e.g. "prometheus:\n  url: ...\n");
  // the next start reads them.
  void add_config(const std::string& yaml) {
    m_extra_config += yaml;
    write_config();
  }

  // The admin API's bearer token (api.token) from the next start on; api()
  // and tidectl() send it.
  void set_api_token(const std::string& token) {
    m_api_token = token;
    write_config();
  }
  [[nodiscard]] const std::string& api_token() const { return m_api_token; }

  // Rewrites coordinator.yaml with another slot count for backend "web" (a
  // load-balancer configuration change the next start picks up).
  void set_backend_slots(int slots) {
    m_slots = slots;
    write_config();
  }

  ~Fleet() {
    // Leave nothing behind, whatever the test did.
    if (m_coordinator) {
      (void)set_desired(0);
      st::eventually(20s, [&] { return live_instances() <= 0; });  // -1: no group any more
      m_coordinator->signal(SIGTERM);
      m_coordinator->wait(10s);
      m_coordinator.reset();
    }
    // Whatever is left names the directory or runs in it.
    for (const pid_t pid : st::processes_matching(m_tag)) ::kill(pid, SIGKILL);
    m_reaper.finish();
    std::error_code ec;
    if (std::getenv("TIDE_KEEP_SYSTEM_DIRS") == nullptr) std::filesystem::remove_all(m_dir, ec);
  }

  // `env`: more environment variables for the coordinator (JOURNAL_STREAM).
  void start_coordinator(std::map<std::string, std::string> env = {}) {
    env["TIDE_SYSTEM_TEST_DIR"] = m_dir.string();
    m_coordinator = std::make_unique<st::Child>(
        std::vector<std::string>{std::string(TIDE_BIN_DIR) + "/tide-coordinator", "--config",
                                 (m_dir / "coordinator.yaml").string()},
        m_dir / "coordinator.log", env);
    REQUIRE(st::eventually(15s, [&] { return api("GET", "/healthz").status == 200; }));
  }

  // SIGTERM, and waits until it has exited.
  void stop_coordinator() {
    m_coordinator->signal(SIGTERM);
    REQUIRE(m_coordinator->wait(15s).has_value());
    m_coordinator.reset();
  }

  // Sends `signo` to the running coordinator (SIGHUP: re-read the configuration).
  void signal_coordinator(int signo) const { m_coordinator->signal(signo); }

  // Pids of the embedded HAProxy (master and worker).
  [[nodiscard]] std::vector<pid_t> haproxy_processes() const {
    return st::processes_matching((m_dir / "state" / "haproxy.cfg").string());
  }

  void kill_coordinator() {
    m_coordinator->signal(SIGKILL);
    m_coordinator->wait(5s);
    m_coordinator.reset();
  }

  st::HttpResult api(const std::string& method, const std::string& path,
                     const std::optional<json>& body = std::nullopt) const {
    return st::http(method, "http://127.0.0.1:" + std::to_string(m_api_port), path, body, m_api_token);
  }

  // Group "web" of tide-sample-app instances behind the frontend. `extra`
  // overrides or adds group fields; `app_flags` go to the application. The
  // application reports its load (app_requests_per_s, app_busy_pct) every
  // 500 ms on its agent's notify socket (write_agent_wrapper), by a path
  // relative to the instance's directory, where the command runs.
  void create_group(int desired, int ready_after_ms, const json& extra = json::object(),
                    const std::string& app_flags = "") {
    put_app_version(ready_after_ms, app_flags);
    json body{{"name", "web"},
              {"launch_configuration", "app"},
              {"min", 0},
              {"max", 6},
              {"desired", desired},
              {"load_balancer", {{"backend", "web"}}},
              {"drain_timeout_ms", 10000}};
    body.update(extra);
    const auto created = api("POST", "/v1/groups", body);
    INFO(created.text);
    REQUIRE(created.status == 201);
  }

  // A new version of launch configuration "app" (the first one creates it):
  // tide-sample-app ready `ready_after_ms` after it starts, with `app_flags`.
  void put_app_version(int ready_after_ms, const std::string& app_flags = "") {
    const std::string command =
        "NOTIFY_SOCKET=agent-state/notify.sock exec " + std::string(TIDE_BIN_DIR) +
        "/tide-sample-app --metrics-interval-ms 500 --ready-after-ms " +
        std::to_string(ready_after_ms) + " --name " + m_tag + " " + app_flags;
    REQUIRE(api("POST", "/v1/launch-configurations",
                json{{"id", "app"}, {"command", command}, {"port", 8080}})
                .status == 201);
  }

  struct TidectlRun {
    int exit_code = -1;  // -1: killed or timed out
    std::string output;  // stdout and stderr
  };
  // tidectl against this fleet's API; its output goes through <dir>/<log_name>.
  [[nodiscard]] TidectlRun tidectl(const std::vector<std::string>& args,
                                   const std::string& log_name = "tidectl.log") const {
    std::vector<std::string> argv{std::string(TIDE_BIN_DIR) + "/tidectl", "--endpoint",
                                  api_endpoint()};
    if (!m_api_token.empty()) argv.insert(argv.end(), {"--token", m_api_token});
    argv.insert(argv.end(), args.begin(), args.end());
    st::Child child(argv, m_dir / log_name);
    const auto status = child.wait(20s);
    TidectlRun run;
    if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
    run.output = st::read_file(m_dir / log_name);
    return run;
  }

  // The newest activity of the group of `type` whose cause contains
  // `needle`; null when there is none.
  [[nodiscard]] json activity(const std::string& type, const std::string& needle) const {
    const json activities = api("GET", "/v1/groups/web/activities?type=" + type).body["activities"];
    if (!activities.is_array()) return nullptr;
    for (const auto& each : activities) {
      if (each.value("cause", "").find(needle) != std::string::npos) return each;
    }
    return nullptr;
  }

  int set_desired(int desired) const {
    return api("PATCH", "/v1/groups/web", json{{"desired", desired}}).status;
  }

  // The group's JSON; an empty object when the coordinator does not answer
  // (restarting), so callers polling with eventually() keep polling.
  [[nodiscard]] json group() const {
    json body = api("GET", "/v1/groups/web").body;
    return body.is_object() ? body : json::object();
  }
  [[nodiscard]] int in_service() const { return group().value("in_service", -1); }
  // The group's average of the custom metric `metric` (one the application
  // reports) over the last 10 s as the coordinator's /metrics shows it
  // (in-service, warmed-up instances), if it has one.
  // The group's average of a policy metric as /metrics shows it, converted
  // back from the family's base unit to the metric's own (cpu in percent).
  [[nodiscard]] std::optional<double> group_metric(const std::string& metric) const {
    const std::string text = api("GET", "/metrics").text;
    const auto family = tide::coordinator::group_metric_family(metric);
    const std::string key = std::string(family.family) + "{group=\"web\"" +
                            (family.custom ? ",metric=\"" + metric + "\"" : std::string()) + "} ";
    const auto at = text.find(key);
    if (at == std::string::npos) return std::nullopt;
    const auto begin = at + key.size();
    const auto end = text.find('\n', begin);
    double value = 0.0;
    const auto [ptr, ec] = std::from_chars(
        text.data() + begin, text.data() + (end == std::string::npos ? text.size() : end), value);
    if (ec != std::errc{}) return std::nullopt;
    return value / family.scale;
  }
  [[nodiscard]] int live_instances() const { return group().value("actual", -1); }

  // Requests every live application of the group answered before it was
  // ready (tide-sample-app counts them; HAProxy must never send one).
  [[nodiscard]] std::uint64_t served_before_ready() const {
    std::uint64_t early = 0;
    const auto listed = api("GET", "/v1/instances?group=web").body;
    for (const auto& i : listed.value("instances", json::array())) {
      const auto stats = st::http(
          "GET",
          "http://" + i.value("address", std::string()) + ":" + std::to_string(i.value("port", 0)),
          "/stats");
      if (stats.status == 200 && stats.body.is_object())
        early += stats.body.value("served_before_ready", 0ULL);
    }
    return early;
  }
  [[nodiscard]] std::size_t app_processes() const {
    std::size_t apps = 0;
    for (const pid_t pid : st::processes_matching(m_tag)) {
      const std::string cmdline = st::read_file("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmdline.rfind(std::string(TIDE_BIN_DIR) + "/tide-sample-app", 0) == 0) ++apps;
    }
    return apps;
  }
  [[nodiscard]] std::string frontend() const {
    return "http://127.0.0.1:" + std::to_string(m_frontend_port);
  }
  [[nodiscard]] std::string api_endpoint() const {
    return "http://127.0.0.1:" + std::to_string(m_api_port);
  }
  [[nodiscard]] std::string agent_endpoint() const {
    return "tcp://127.0.0.1:" + std::to_string(m_agent_port);
  }
  [[nodiscard]] std::string log() const { return st::read_file(m_dir / "coordinator.log"); }
  [[nodiscard]] const std::filesystem::path& dir() const { return m_dir; }

 private:
  std::filesystem::path m_dir;
  st::Reaper m_reaper;  // after m_dir: it watches it
  std::uint16_t m_api_port = 0, m_agent_port = 0, m_frontend_port = 0;
  std::string m_tag;
  std::string m_lb_options;
  std::string m_extra_config;
  int m_slots = 16;
  std::string m_api_token;
  std::unique_ptr<st::Child> m_coordinator;

  // The local provider starts every agent with a fixed environment and no
  // notify socket (nothing in the launch configuration asks for one), so the
  // coordinator runs this wrapper as its agent: the real tide-agent with an
  // sd_notify socket in its state dir, where the application beside it sends
  // its load metrics (METRIC=name=value). A real image configures the same
  // with notify.socket in agent.yaml. The path is relative: the agent and the
  // application both run in the instance's directory (agent-state/ is the
  // agent's TIDE_STATE_DIR), and an absolute path under a deep temporary
  // directory can exceed the 107 bytes a unix socket address holds.
  void write_agent_wrapper() const {
    const auto path = m_dir / "tide-agent-with-notify";
    std::ofstream(path) << "#!/bin/sh\n"
                        << "TIDE_NOTIFY_SOCKET=agent-state/notify.sock exec " << TIDE_BIN_DIR
                        << "/tide-agent \"$@\"\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all |
                                           std::filesystem::perms::group_read |
                                           std::filesystem::perms::group_exec);
  }

  void write_config() const {
    std::ofstream(m_dir / "coordinator.yaml")
        << "state_dir: " << (m_dir / "state").string() << "\n"
        << "log_level: info\n"
        << "tick_interval_ms: 100\n"
        << "agents:\n  listen: tcp://127.0.0.1:" << m_agent_port << "\n"
        << "  report_interval_ms: 500\n  heartbeat_interval_ms: 500\n"
        << "api:\n  listen_port: " << m_api_port << "\n"
        << (m_api_token.empty() ? std::string() : "  token: " + m_api_token + "\n")
        // Its own loopback /24, so system tests running side by side never
        // hand out the same instance address.
        << "provider:\n  local:\n    agent_path: " << (m_dir / "tide-agent-with-notify").string()
        << "\n"
        << "    address_prefix: \"127." << 10 + (m_api_port / 256) % 200 << '.' << m_api_port % 256
        << ".\"\n"
        << "load_balancer:\n  reconcile_interval_ms: 1000\n"
        << m_lb_options << "  backends:\n"
        << "    - name: web\n      bind_port: " << m_frontend_port << "\n      slots: " << m_slots
        << "\n"
        << m_extra_config;
  }
};

}  // namespace tide::system_test
