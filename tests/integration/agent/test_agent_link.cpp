// The real tide-agent process against a test coordinator (ROUTER, CURVE,
// ZAP) and the real sample application, over tcp://127.0.0.1.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "harness.hpp"

using namespace tide;
using namespace tide::test;
using protocol::Report;

namespace {

struct Fixture {
  uv_loop_t loop{};
  std::filesystem::path dir = make_temp_dir();
  transport::CurveKeyPair server = *transport::generate_curve_keypair();
  std::unique_ptr<TestCoordinator> coord;
  std::unique_ptr<Child> agent;
  std::unique_ptr<Child> app;

  Fixture() {
    uv_loop_init(&loop);
    coord = std::make_unique<TestCoordinator>(&loop, server, 0);
    coord->start();
  }
  ~Fixture() {
    agent.reset();
    app.reset();
    coord.reset();
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    std::filesystem::remove_all(dir);
  }

  void start_agent(const std::string& yaml, std::map<std::string, std::string> env = {}) {
    std::ofstream(dir / "agent.yaml") << yaml;
    env.emplace("TIDE_COORDINATOR_ENDPOINT", "tcp://127.0.0.1:" + std::to_string(coord->port()));
    env.emplace("TIDE_COORDINATOR_PUBLIC_KEY", server.public_z85);
    env.emplace("TIDE_INSTANCE_ID", "i-test-1");
    env.emplace("TIDE_STATE_DIR", (dir / "state").string());
    env.emplace("TIDE_LOG_LEVEL", "info");
    agent = std::make_unique<Child>(&loop,
        std::vector<std::string>{std::string(TIDE_BIN_DIR) + "/tide-agent", "--config", (dir / "agent.yaml").string()},
        env, false);
  }

  std::vector<std::pair<Report, Received>> reports() const { return coord->all<Report>(); }

  // Waits for a report satisfying pred that arrived at or after since_ms.
  std::optional<std::pair<Report, Received>> wait_report(const std::function<bool(const Report&)>& pred,
                                                          std::uint64_t since_ms, std::uint64_t timeout_ms) {
    std::optional<std::pair<Report, Received>> found;
    run_until(&loop, [&] {
      for (const auto& [r, rx] : reports()) {
        if (rx.at_ms >= since_ms && pred(r)) {
          found = std::make_pair(r, rx);
          return true;
        }
      }
      return false;
    }, timeout_ms);
    return found;
  }
  template <typename T>
  bool wait_count(std::size_t n, std::uint64_t timeout_ms) {
    return run_until(&loop, [&] { return coord->count<T>() >= n; }, timeout_ms);
  }
};

std::string probe_yaml(int port, std::uint32_t period_ms = 100) {
  return "readiness:\n  probes:\n    - name: web\n      type: http\n      url: http://127.0.0.1:" +
         std::to_string(port) + "/ready\n      period_ms: " + std::to_string(period_ms) +
         "\n      timeout_ms: 500\n      failure_threshold: 1\n";
}

void send_notify(const std::filesystem::path& path, const std::string& text) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  (void)::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

}  // namespace

TEST_CASE("HELLO over CURVE then reports at the interval and readiness follows the application", "[agent][link]") {
  Fixture f;
  const int port = start_sample_app(&f.loop, f.app, 400);
  REQUIRE(port > 0);
  f.start_agent(probe_yaml(port));

  REQUIRE(f.wait_count<protocol::Hello>(1, 5000));
  const auto hello = f.coord->all<protocol::Hello>().front();
  CHECK(hello.first.instance_id == "i-test-1");
  CHECK(transport::is_agent_routing_id_for(hello.second.routing_id, "i-test-1"));  // "a:i-test-1/<nonce>"
  CHECK(hello.second.user_id.size() == 40);  // the agent's CURVE key, via ZAP

  // Not ready first, then ready once the application is.
  auto first = f.wait_report([](const Report&) { return true; }, 0, 3000);
  REQUIRE(first);
  CHECK(first->first.seq == 1);
  auto ready = f.wait_report([](const Report& r) { return r.ready; }, 0, 5000);
  REQUIRE(ready);
  REQUIRE(ready->first.probes.size() == 1);
  CHECK(ready->first.probes[0].name == "web");
  CHECK(ready->first.metrics.memory_pct.has_value());

  // Flip the application to not ready: the probe sees it within one period
  // and the report follows at once, not at the next report tick.
  const auto t0 = wall_ms();
  REQUIRE(http_get(port, "/admin/ready?state=0") == 200);
  auto not_ready = f.wait_report([](const Report& r) { return !r.ready; }, t0, 3000);
  REQUIRE(not_ready);
  INFO("flip to report: " << not_ready->second.at_ms - t0 << " ms");
  CHECK(not_ready->second.at_ms - t0 <= 100 + 50);  // probe period + 50 ms
  CHECK(not_ready->second.at_ms - not_ready->first.timestamp_ms <= 50);
  CHECK(not_ready->first.ready_reason.find("probe web") != std::string::npos);

  const auto t1 = wall_ms();
  REQUIRE(http_get(port, "/admin/ready?state=1") == 200);
  auto back = f.wait_report([](const Report& r) { return r.ready; }, t1, 3000);
  REQUIRE(back);
  CHECK(back->second.at_ms - t1 <= 150);

  // Sequence numbers strictly increase within the session.
  const auto all = f.reports();
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].first.seq > all[i - 1].first.seq);

  // SIGTERM: GOODBYE, exit 0.
  f.agent->kill(SIGTERM);
  REQUIRE(run_until(&f.loop, [&] { return f.agent->exited(); }, 5000));
  CHECK(f.agent->exit_status() == 0);
  CHECK(f.coord->count<protocol::Goodbye>() == 1);
}

TEST_CASE("notify socket READY=1 reaches the coordinator within 50 ms and garbage is ignored", "[agent][notify]") {
  Fixture f;
  const auto sock = f.dir / "notify.sock";
  f.start_agent("readiness:\n  notify: true\nnotify:\n  socket: " + sock.string() + "\n");
  auto first = f.wait_report([](const Report&) { return true; }, 0, 5000);
  REQUIRE(first);
  CHECK_FALSE(first->first.ready);
  CHECK(first->first.ready_reason == "application has not said READY=1");

  send_notify(sock, std::string("\x00\xff garbage\nREADY=7\n=\n", 22));
  send_notify(sock, std::string(5000, 'x'));
  send_notify(sock, "METRIC=qps=1234\nSTATUS=warming up");
  auto with_metric = f.wait_report([](const Report& r) { return r.metrics.custom.count("qps") == 1; }, 0, 2000);
  REQUIRE(with_metric);
  CHECK(with_metric->first.metrics.custom.at("qps") == 1234.0);
  CHECK_FALSE(with_metric->first.ready);

  const auto t0 = wall_ms();
  send_notify(sock, "READY=1");
  auto ready = f.wait_report([](const Report& r) { return r.ready; }, t0, 2000);
  REQUIRE(ready);
  INFO("READY=1 to report: " << ready->second.at_ms - t0 << " ms");
  CHECK(ready->second.at_ms - t0 <= 50);

  const auto t1 = wall_ms();
  send_notify(sock, "STOPPING=1");
  auto stopping = f.wait_report([](const Report& r) { return !r.ready; }, t1, 2000);
  REQUIRE(stopping);
  CHECK(stopping->second.at_ms - t1 <= 50);
  CHECK_FALSE(f.agent->exited());
}

TEST_CASE("the agent survives a coordinator restart and says HELLO again with the same key", "[agent][link]") {
  Fixture f;
  f.start_agent("");
  REQUIRE(f.wait_count<protocol::Hello>(1, 5000));
  REQUIRE(f.wait_count<Report>(2, 3000));
  const auto key = f.coord->all<protocol::Hello>().front().second.user_id;
  const int port = f.coord->port();

  // Kill the coordinator; bring a new one up on the same port after 500 ms.
  f.coord->stop();
  run_for(&f.loop, 500);
  f.coord = std::make_unique<TestCoordinator>(&f.loop, f.server, port);
  f.coord->start();
  REQUIRE(f.wait_count<protocol::Hello>(1, 10000));
  REQUIRE(f.wait_count<Report>(1, 3000));
  CHECK(f.coord->all<Report>().front().first.seq == 1);  // a new session, no replayed backlog
  CHECK(f.coord->all<protocol::Hello>().front().second.user_id == key);

  // A coordinator that forgot the session (ERROR 410 path): drop the
  // session table only; the agent's next REPORT gets 410 and it re-HELLOs.
  const auto hellos = f.coord->count<protocol::Hello>();
  f.coord->sessions.clear();
  REQUIRE(f.wait_count<protocol::Hello>(hellos + 1, 3000));

  // Restarting the agent keeps its identity (the key file in the state dir),
  // tightening a state directory and key file left open by hand.
  f.agent->kill(SIGTERM);
  REQUIRE(run_until(&f.loop, [&] { return f.agent->exited(); }, 5000));
  const auto before = f.coord->count<protocol::Hello>();
  REQUIRE(::chmod((f.dir / "state").c_str(), 0755) == 0);
  REQUIRE(::chmod((f.dir / "state" / "agent.key").c_str(), 0644) == 0);
  f.start_agent("");
  REQUIRE(f.wait_count<protocol::Hello>(before + 1, 5000));
  CHECK(f.coord->all<protocol::Hello>().back().second.user_id == key);
  const auto key_file = f.dir / "state" / "agent.key";
  REQUIRE(std::filesystem::exists(key_file));
  const auto perms = std::filesystem::status(key_file).permissions();
  CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
        std::filesystem::perms::none);
  CHECK(std::filesystem::status(f.dir / "state").permissions() == std::filesystem::perms::owner_all);
}

TEST_CASE("DRAIN and UNDRAIN are honoured and acknowledged and idempotent", "[agent][commands]") {
  Fixture f;
  const int port = start_sample_app(&f.loop, f.app, 0);
  f.start_agent(probe_yaml(port) + "commands:\n  drain: \"echo x >> " + (f.dir / "drained").string() +
                "\"\n  undrain: \"rm -f " + (f.dir / "drained").string() + "\"\n");
  REQUIRE(f.wait_report([](const Report& r) { return r.ready; }, 0, 5000));

  const auto t0 = wall_ms();
  REQUIRE(f.coord->send(protocol::Drain{7, 1000}));
  auto drained = f.wait_report([](const Report& r) { return r.draining && !r.ready; }, t0, 2000);
  REQUIRE(drained);
  CHECK(drained->second.at_ms - t0 <= 50);
  REQUIRE(f.wait_count<protocol::Ack>(1, 2000));
  CHECK(f.coord->all<protocol::Ack>().front().first.command_id == 7);
  // The resend of the same command is acknowledged again but not re-run.
  REQUIRE(f.coord->send(protocol::Drain{7, 1000}));
  REQUIRE(f.wait_count<protocol::Ack>(2, 2000));
  REQUIRE(run_until(&f.loop, [&] { return std::filesystem::exists(f.dir / "drained"); }, 3000));
  run_for(&f.loop, 300);
  std::ifstream in(f.dir / "drained");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string content = ss.str();
  CHECK(content == "x\n");
  // Probes passing does not undo a drain.
  auto still = f.wait_report([](const Report&) { return true; }, wall_ms(), 1000);
  REQUIRE(still);
  CHECK_FALSE(still->first.ready);

  const auto t1 = wall_ms();
  REQUIRE(f.coord->send(protocol::Undrain{8}));
  auto back = f.wait_report([](const Report& r) { return r.ready && !r.draining; }, t1, 2000);
  REQUIRE(back);
  REQUIRE(f.wait_count<protocol::Ack>(3, 2000));
  CHECK(f.coord->all<protocol::Ack>().back().first.command_id == 8);
  // The undrain command runs after the report; give the shell time to finish.
  CHECK(run_until(&f.loop, [&] { return !std::filesystem::exists(f.dir / "drained"); }, 3000));
}

TEST_CASE("a hanging probe target does not stall reports", "[agent][probes]") {
  Fixture f;
  // A listener that never accepts: the kernel completes the handshake, no
  // one ever answers the HTTP request.
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(lfd, 16) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  f.start_agent("readiness:\n  probes:\n    - name: hang\n      type: http\n      url: http://127.0.0.1:" +
                std::to_string(port) + "/ready\n      period_ms: 100\n      timeout_ms: 300\n"
                "    - name: sleepy\n      type: exec\n      command: \"sleep 30\"\n      period_ms: 100\n"
                "      timeout_ms: 300\n");
  REQUIRE(f.wait_count<Report>(1, 5000));
  const auto start = wall_ms();
  run_for(&f.loop, 2000);
  std::vector<std::uint64_t> times;
  for (const auto& [r, rx] : f.reports()) {
    if (rx.at_ms >= start) times.push_back(rx.at_ms);
  }
  CHECK(times.size() >= 7);  // 200 ms interval +-10 % over 2 s
  for (std::size_t i = 1; i < times.size(); ++i) CHECK(times[i] - times[i - 1] < 450);
  const auto last = f.reports().back().first;
  REQUIRE(last.probes.size() == 2);
  CHECK(last.probes[0].message == "timed out");
  CHECK(last.probes[1].message == "timed out");
  CHECK_FALSE(last.ready);
  ::close(lfd);
}

TEST_CASE("HOOK_RUN gets ACK at start and HOOK_RESULT with the exit status and output", "[agent][commands]") {
  Fixture f;
  f.start_agent("hooks:\n  greet:\n    command: \"echo hello from hook; exit 3\"\n  slow:\n"
                "    command: \"sleep 30\"\n    timeout_ms: 200\n");
  REQUIRE(f.wait_count<Report>(1, 5000));
  REQUIRE(f.coord->send(protocol::HookRun{9, "greet", "launching", 5000}));
  REQUIRE(f.wait_count<protocol::HookResult>(1, 3000));
  CHECK(f.coord->all<protocol::Ack>().front().first.command_id == 9);
  auto result = f.coord->all<protocol::HookResult>().front().first;
  CHECK(result.command_id == 9);
  CHECK(result.exit_status == 3);
  CHECK_FALSE(result.timed_out);
  CHECK(result.output == "hello from hook\n");

  REQUIRE(f.coord->send(protocol::HookRun{10, "slow", "terminating", 5000}));  // the config caps it at 200 ms
  REQUIRE(f.wait_count<protocol::HookResult>(2, 3000));
  CHECK(f.coord->all<protocol::HookResult>().back().first.timed_out);

  REQUIRE(f.coord->send(protocol::HookRun{11, "nope", "launching", 1000}));
  REQUIRE(f.wait_count<protocol::HookResult>(3, 3000));
  CHECK(f.coord->all<protocol::HookResult>().back().first.exit_status == -1);

  // A resend of a finished hook gets its result again, without a re-run.
  REQUIRE(f.coord->send(protocol::HookRun{9, "greet", "launching", 5000}));
  REQUIRE(f.wait_count<protocol::HookResult>(4, 3000));
  CHECK(f.coord->all<protocol::HookResult>().back().first.command_id == 9);
}

TEST_CASE("bad input from the coordinator is dropped and another major version is retried", "[agent][link]") {
  Fixture f;
  f.start_agent("");
  REQUIRE(f.wait_count<Report>(1, 5000));
  REQUIRE(f.coord->send_raw({0xc1, 0x00, 0xff}));
  REQUIRE(f.coord->send_raw({0xdd, 0xff, 0x00, 0x00, 0x00}));
  REQUIRE(f.coord->send(protocol::Hello{"x", "", "1", "", "", 0, {}, {}}));  // not for an agent
  const auto n = f.coord->count<Report>();
  REQUIRE(f.wait_count<Report>(n + 3, 3000));  // still reporting
  CHECK_FALSE(f.agent->exited());

  // ["TIDE", 2, 0, "HEARTBEAT", {}]: the agent drops the session and retries.
  const auto hellos = f.coord->count<protocol::Hello>();
  REQUIRE(f.coord->send_raw({0x95, 0xa4, 'T', 'I', 'D', 'E', 0x02, 0x00, 0xa9, 'H', 'E', 'A', 'R', 'T', 'B',
                             'E', 'A', 'T', 0x80}));
  REQUIRE(f.wait_count<protocol::Hello>(hellos + 1, 8000));
  CHECK_FALSE(f.agent->exited());
}

TEST_CASE("SHUTDOWN runs the pre-stop command then says GOODBYE and exits", "[agent][commands]") {
  Fixture f;
  f.start_agent("commands:\n  pre_stop: \"touch " + (f.dir / "prestop").string() + "\"\n  shutdown_action: exit\n");
  REQUIRE(f.wait_count<Report>(1, 5000));
  REQUIRE(f.coord->send(protocol::Shutdown{12, 2000}));
  REQUIRE(run_until(&f.loop, [&] { return f.agent->exited(); }, 5000));
  CHECK(f.agent->exit_status() == 0);
  CHECK(f.coord->count<protocol::Ack>() == 1);
  CHECK(f.coord->count<protocol::Goodbye>() == 1);
  CHECK(std::filesystem::exists(f.dir / "prestop"));
}

TEST_CASE("a key the coordinator's ZAP handler refuses never gets a session", "[agent][security]") {
  Fixture f;
  f.coord->allowed_keys = {"not-the-agents-key"};
  f.start_agent("");
  run_for(&f.loop, 1500);
  CHECK(f.coord->count<protocol::Hello>() == 0);
  CHECK(f.coord->zap_refused >= 1);
  CHECK_FALSE(f.agent->exited());
}

TEST_CASE("a readiness probe runs at its startup period until first ready, then at its period", "[agent][probes]") {
  Fixture f;
  // An exec probe that logs each attempt and passes once a file exists.
  const auto attempts = f.dir / "attempts";
  const auto ready = f.dir / "ready";
  f.start_agent("readiness:\n  period_ms: 60000\n  startup_period_ms: 50\n  probes:\n"
                "    - name: file\n      type: exec\n      command: \"echo x >> '" + attempts.string() +
                "'; test -f '" + ready.string() + "'\"\n");
  auto count_attempts = [&] {
    std::ifstream in(attempts);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  // At a 60 s period there would be one attempt; the startup period repeats it.
  REQUIRE(f.wait_count<Report>(1, 5000));
  CHECK(run_until(&f.loop, [&] { return count_attempts() >= 4; }, 10'000));
  CHECK_FALSE(f.reports().back().first.ready);

  std::ofstream(ready) << "1\n";
  const auto t0 = wall_ms();
  auto became_ready = f.wait_report([](const Report& r) { return r.ready; }, t0, 10'000);
  REQUIRE(became_ready);

  // Seen ready once: the next attempt is a minute away.
  const auto after_ready = count_attempts();
  run_for(&f.loop, 1500);
  CHECK(count_attempts() == after_ready);
  CHECK(f.reports().back().first.ready);
}
