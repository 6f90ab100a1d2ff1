// The local and exec providers against real processes, real files and real
// sockets on loopback addresses. Every test bounds its waits and checks that
// no process it started is left running.
#include <catch2/catch.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <uv.h>

#include "coordinator/io/provider/exec_provider.hpp"
#include "coordinator/io/provider/exit_report.hpp"
#include "coordinator/io/provider/local_provider.hpp"
#include "coordinator/io/provider/process_table.hpp"

namespace fs = std::filesystem;
using namespace tide::provider;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kData = std::string(TIDE_TEST_DATA_DIR) + "/provider";

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a loop until a result arrives, bounded in time.
class TestLoop {
 public:
  TestLoop() {
    REQUIRE(uv_loop_init(&m_loop) == 0);
    uv_timer_init(&m_loop, &m_wake);
  }
  ~TestLoop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&m_wake), nullptr);
    // Let the providers' self-owned timers and pool jobs finish.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (uv_run(&m_loop, UV_RUN_NOWAIT) != 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(uv_loop_close(&m_loop) == 0);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  uv_loop_t* get() { return &m_loop; }

  // Starts an operation and waits for its callback.
  template <typename T>
  T await(const std::function<void(std::function<void(T)>)>& start, int timeout_ms = 20'000) {
    std::optional<T> result;
    start([&result](T value) { result.emplace(std::move(value)); });
    spin([&] { return result.has_value(); }, timeout_ms);
    REQUIRE(result.has_value());
    return std::move(*result);
  }

  // Runs the loop until pred() holds or timeout_ms pass.
  void spin(const std::function<bool()>& pred, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    uv_timer_start(&m_wake, [](uv_timer_t*) {}, 5, 5);  // so UV_RUN_ONCE wakes up
    while (!pred() && Clock::now() < deadline) uv_run(&m_loop, UV_RUN_ONCE);
    uv_timer_stop(&m_wake);
  }

 private:
  uv_loop_t m_loop{};
  uv_timer_t m_wake{};
};

using LaunchOutcome = tl::expected<LaunchResult, ProviderError>;
using TerminateOutcome = tl::expected<void, ProviderError>;
using ListOutcome = tl::expected<std::vector<ProviderInstance>, ProviderError>;
using DescribeOutcome = tl::expected<ProviderInstance, ProviderError>;

LaunchOutcome do_launch(TestLoop& loop, Provider& p, LaunchRequest r) {
  return loop.await<LaunchOutcome>([&](auto cb) { p.launch(r, cb); });
}
TerminateOutcome do_terminate(TestLoop& loop, Provider& p, const std::string& id, std::uint32_t grace_ms) {
  return loop.await<TerminateOutcome>([&](auto cb) { p.terminate(id, grace_ms, cb); });
}
ListOutcome do_list(TestLoop& loop, Provider& p) {
  return loop.await<ListOutcome>([&](auto cb) { p.list(cb); });
}
DescribeOutcome do_describe(TestLoop& loop, Provider& p, const std::string& id) {
  return loop.await<DescribeOutcome>([&](auto cb) { p.describe(id, cb); });
}

// Pids of live (non-zombie) processes whose environment holds
// TIDE_INSTANCE_ID=<prefix>...: what this test started.
std::vector<pid_t> processes_tagged(const std::string& prefix) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  const std::string wanted = "TIDE_INSTANCE_ID=" + prefix;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    const auto st = read_proc_stat(static_cast<pid_t>(pid));
    if (!st || st->state == 'Z' || st->state == 'X') continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    std::string entry;
    while (std::getline(in, entry, '\0')) {
      if (entry.rfind(wanted, 0) == 0) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  closedir(dir);
  return out;
}

bool can_connect(const std::string& address, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

bool eventually(const std::function<bool()>& pred, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A scratch directory, a tag unique to this test process, and a safety net
// that kills whatever the test left behind (after checking nothing was).
struct Sandbox {
  fs::path dir;
  std::string tag;
  std::string prefix;
  std::uint16_t port;

  Sandbox() {
    std::string templ = (fs::temp_directory_path() / "tide-provider-XXXXXX").string();
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir = templ;
    const auto pid = static_cast<unsigned>(getpid());
    tag = "t" + std::to_string(pid) + "-";
    // Parallel test processes use different subnets and ports.
    prefix = "127.0." + std::to_string(100 + pid % 150) + ".";
    port = static_cast<std::uint16_t>(20000 + pid % 20000);
  }
  ~Sandbox() {
    const auto left = processes_tagged(tag);
    CHECK(left.empty());
    for (const pid_t pid : left) ::kill(pid, SIGKILL);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  LocalProviderOptions local_options() const {
    LocalProviderOptions o;
    o.state_dir = (dir / "state").string();
    o.address_prefix = prefix;
    return o;
  }

  LaunchRequest request(const std::string& name, const std::string& command) const {
    LaunchRequest r;
    r.instance_id = tag + name;
    r.idempotency_key = r.instance_id;
    r.group = "web";
    r.launch.command = command;
    r.launch.port = port;
    return r;
  }
};

nlohmann::json read_record(const Sandbox& sb, const std::string& id) {
  return nlohmann::json::parse(read_file(sb.dir / "state" / "records" / (id + ".json")));
}

}  // namespace

TEST_CASE("parse_proc_stat copes with parentheses and spaces in the command name") {
  const auto st = parse_proc_stat(
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10");
  REQUIRE(st);
  CHECK(st->pid == 4242);
  CHECK(st->state == 'S');
  CHECK(st->pgrp == 4242);
  CHECK(st->session == 4242);
  CHECK(st->start_time_ticks == 987654);
  CHECK_FALSE(parse_proc_stat("garbage"));
  CHECK_FALSE(parse_proc_stat("12 (x) S 1 2"));
}

TEST_CASE("local: launch starts a reachable application in its own process group with its environment") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  auto req = sb.request("web1",
                        "env > \"$MARK_DIR/app-env.txt\"; exec /usr/bin/python3 -m http.server "
                        "--bind \"$HOST\" \"$PORT\"");
  req.launch.env = {{"MARK_DIR", sb.dir.string()}, {"FOO", "bar baz"}};
  req.agent.enrollment_token = "secret-token";  // no agent path: must not reach the app

  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  CHECK(launched->provider_id == req.idempotency_key);
  CHECK(launched->address.rfind(sb.prefix, 0) == 0);
  CHECK(launched->port == sb.port);
  CHECK_FALSE(launched->existing);
  REQUIRE(eventually([&] { return can_connect(launched->address, launched->port); }, 10'000));

  const auto env = read_file(sb.dir / "app-env.txt");
  CHECK(env.find("TIDE_INSTANCE_ID=" + req.instance_id + "\n") != std::string::npos);
  CHECK(env.find("TIDE_INSTANCE_ADDRESS=" + launched->address + "\n") != std::string::npos);
  CHECK(env.find("TIDE_INSTANCE_PORT=" + std::to_string(sb.port) + "\n") != std::string::npos);
  CHECK(env.find("HOST=" + launched->address + "\n") != std::string::npos);
  CHECK(env.find("PORT=" + std::to_string(sb.port) + "\n") != std::string::npos);
  CHECK(env.find("FOO=bar baz\n") != std::string::npos);
  CHECK(env.find("_TIDE_") == std::string::npos);
  CHECK(env.find("secret-token") == std::string::npos);

  // The record names a process group that is not ours, led by the launcher.
  const auto record = read_record(sb, launched->provider_id);
  CHECK(record.at("phase") == "running");
  const auto pgid = record.at("pgid").get<pid_t>();
  CHECK(pgid == record.at("leader").at("pid").get<pid_t>());
  CHECK(pgid != getpgrp());
  const auto app = read_proc_stat(record.at("app").at("pid").get<pid_t>());
  REQUIRE(app);
  CHECK(app->pgrp == pgid);
  CHECK(app->session == pgid);
  CHECK(app->start_time_ticks == record.at("app").at("start_time_ticks").get<std::uint64_t>());
  CHECK(record.at("agent").at("pid").get<pid_t>() == 0);

  const auto described = do_describe(loop, provider, launched->provider_id);
  REQUIRE(described);
  CHECK(described->state == InstanceState::Running);
  CHECK(described->instance_id == req.instance_id);
  CHECK(described->started_at_ms > 0);

  const auto t0 = Clock::now();
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 5'000));
  CHECK(Clock::now() - t0 < std::chrono::seconds(3));  // python exits on SIGTERM
  CHECK(eventually([&] { return !can_connect(launched->address, launched->port); }, 3'000));
  CHECK_FALSE(fs::exists(sb.dir / "state" / "records" / (launched->provider_id + ".json")));
  CHECK(processes_tagged(sb.tag).empty());
  CHECK(provider.metrics().launch.calls == 1);
  CHECK(provider.metrics().terminate.calls == 1);
  CHECK(provider.metrics().launch.failures == 0);
}

TEST_CASE("local: the agent starts beside the application with its own environment only") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  auto req = sb.request("agent1", "exec sleep 600");
  req.launch.env = {{"FOO", "app-only"}};
  req.agent.agent_path = kData + "/fake-agent";
  req.agent.coordinator_endpoint = "tcp://127.0.0.1:7400";
  req.agent.coordinator_public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  req.agent.enrollment_token = "tok-123";
  req.agent.readiness_path = "/ready";
  req.agent.readiness_period_ms = 250;
  req.agent.log_level = "debug";

  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  const fs::path env_file = fs::path(provider.instance_dir(launched->provider_id)) / "agent-state" / "env.txt";
  REQUIRE(eventually([&] { return read_file(env_file).find("TIDE_LOG_LEVEL") != std::string::npos; }, 5'000));
  const auto env = read_file(env_file);
  const std::string addr = launched->address;
  const std::string port = std::to_string(sb.port);
  for (const std::string& line : std::vector<std::string>{
           "TIDE_COORDINATOR_ENDPOINT=tcp://127.0.0.1:7400",
        "TIDE_COORDINATOR_PUBLIC_KEY=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
        "TIDE_INSTANCE_ID=" + req.instance_id, "TIDE_ENROLLMENT_TOKEN=tok-123", "TIDE_GROUP=web",
        "TIDE_SERVICE_ADDRESS=" + addr, "TIDE_SERVICE_PORT=" + port,
        "TIDE_READINESS_HTTP=http://" + addr + ":" + port + "/ready", "TIDE_READINESS_PERIOD_MS=250",
        "TIDE_STATE_DIR=" + provider.instance_dir(launched->provider_id) + "/agent-state",
        "TIDE_LOG_LEVEL=debug",
        // Instances share this host: each agent measures its own instance's processes.
        "TIDE_METRICS_SCOPE=session"}) {
    CHECK(env.find(line + "\n") != std::string::npos);
  }
  CHECK(env.find("FOO=") == std::string::npos);  // the application's settings stay with it
  CHECK(env.find("_TIDE_") == std::string::npos);

  const auto record = read_record(sb, launched->provider_id);
  const auto agent = read_proc_stat(record.at("agent").at("pid").get<pid_t>());
  REQUIRE(agent);
  CHECK(agent->pgrp == record.at("pgid").get<pid_t>());
  CHECK(processes_tagged(sb.tag).size() >= 3);  // launcher, app, agent

  REQUIRE(do_terminate(loop, provider, launched->provider_id, 2'000));
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("local: an unset readiness period reaches the agent as an empty variable") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  auto req = sb.request("agent0", "exec sleep 600");
  req.agent.agent_path = kData + "/fake-agent";
  req.agent.coordinator_endpoint = "tcp://127.0.0.1:7400";
  req.agent.enrollment_token = "tok-0";
  req.agent.log_level = "info";
  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  const fs::path env_file = fs::path(provider.instance_dir(launched->provider_id)) / "agent-state" / "env.txt";
  REQUIRE(eventually([&] { return read_file(env_file).find("TIDE_LOG_LEVEL") != std::string::npos; }, 5'000));
  // Empty: the agent keeps its own default (agent/io/config.cpp).
  const std::string env = "\n" + read_file(env_file);
  CHECK(env.find("\nTIDE_READINESS_PERIOD_MS=\n") != std::string::npos);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 2'000));
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("local: the real agent probes readiness at the launch configuration's period") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  auto req = sb.request("realagent", "exec sleep 600");
  req.agent.agent_path = std::string(TIDE_BIN_DIR) + "/tide-agent";
  // No coordinator listens there: the agent keeps retrying, which is enough
  // for it to start its probes.
  req.agent.coordinator_endpoint = "tcp://127.0.0.1:9";
  req.agent.enrollment_token = "tok-1";
  req.agent.readiness_path = "/ready";
  req.agent.readiness_period_ms = 250;
  req.agent.log_level = "info";
  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  const fs::path log = fs::path(provider.instance_dir(launched->provider_id)) / "agent.log";
  const std::string expected = "readiness probe env-http (http): every 50 ms until it first passes, then every 250 ms";
  // The agent writes its start line after the probe line: wait for both.
  CHECK(eventually([&] {
    const std::string text = read_file(log);
    return text.find(expected) != std::string::npos && text.find("tide-agent") != std::string::npos;
  }, 10'000));
  INFO(read_file(log));
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 5'000));
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("exec: the launch request carries the agent's readiness period") {
  LaunchRequest req;
  req.instance_id = "i-1";
  req.agent.readiness_period_ms = 120;
  auto j = launch_request_json(req);
  CHECK(j.at("agent").at("readiness_period_ms") == 120);
  CHECK(j.at("agent").at("readiness_path") == "/ready");
  req.agent.readiness_period_ms = 0;  // the agent's default
  CHECK(launch_request_json(req).at("agent").at("readiness_period_ms") == 0);
}

TEST_CASE("local: concurrent launches get distinct addresses") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  std::vector<LaunchOutcome> results;
  for (int i = 0; i < 4; ++i) {
    provider.launch(sb.request("c" + std::to_string(i), "exec sleep 600"),
                    [&results](LaunchOutcome r) { results.push_back(std::move(r)); });
  }
  loop.spin([&] { return results.size() == 4; }, 20'000);
  REQUIRE(results.size() == 4);
  std::set<std::string> addresses;
  for (const auto& r : results) {
    REQUIRE(r);
    addresses.insert(r->address);
  }
  CHECK(addresses.size() == 4);

  const auto listed = do_list(loop, provider);
  REQUIRE(listed);
  CHECK(listed->size() == 4);
  for (const auto& i : *listed) CHECK(i.state == InstanceState::Running);

  for (const auto& r : results) REQUIRE(do_terminate(loop, provider, r->provider_id, 1'000));
  const auto after = do_list(loop, provider);
  REQUIRE(after);
  CHECK(after->empty());
}

TEST_CASE("local: terminate lets a process that handles SIGTERM exit within the grace period") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  const fs::path mark = sb.dir / "got-term";
  auto req = sb.request("graceful",
                        "trap 'echo bye > \"$MARK\"; exit 0' TERM; while :; do sleep 0.05; done");
  req.launch.env = {{"MARK", mark.string()}};
  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the trap be installed

  const auto t0 = Clock::now();
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 5'000));
  CHECK(Clock::now() - t0 < std::chrono::seconds(2));
  CHECK(read_file(mark) == "bye\n");
  CHECK(processes_tagged(sb.tag).empty());

  // Terminating again is not an error.
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 5'000));
}

TEST_CASE("local: terminate falls back to SIGKILL when SIGTERM is ignored") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  const auto launched =
      do_launch(loop, provider, sb.request("stubborn", "trap '' TERM; while :; do sleep 0.05; done"));
  REQUIRE(launched);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  const auto t0 = Clock::now();
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 300));
  const auto elapsed = Clock::now() - t0;
  CHECK(elapsed >= std::chrono::milliseconds(300));
  CHECK(elapsed < std::chrono::seconds(3));
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("local: a restarted provider re-adopts running instances and does not launch duplicates") {
  Sandbox sb;
  TestLoop loop;
  std::vector<LaunchResult> first;
  {
    LocalProvider before(loop.get(), sb.local_options());
    for (const char* name : {"r1", "r2"}) {
      auto r = do_launch(loop, before, sb.request(name, "exec sleep 600"));
      REQUIRE(r);
      first.push_back(*r);
    }
  }  // the "coordinator" goes away; its instances keep running
  const auto running = processes_tagged(sb.tag).size();
  CHECK(running >= 4);  // a launcher and an application each

  LocalProvider after(loop.get(), sb.local_options());
  const auto listed = do_list(loop, after);
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  for (const auto& i : *listed) {
    CHECK(i.state == InstanceState::Running);
    CHECK(i.group == "web");
  }

  const auto again = do_launch(loop, after, sb.request("r1", "exec sleep 600"));
  REQUIRE(again);
  CHECK(again->existing);
  CHECK(again->provider_id == first[0].provider_id);
  CHECK(again->address == first[0].address);
  CHECK(processes_tagged(sb.tag).size() == running);  // nothing new started

  for (const auto& r : first) REQUIRE(do_terminate(loop, after, r.provider_id, 1'000));
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("local: an instance whose processes died is reported gone, then forgotten") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  const auto launched = do_launch(loop, provider, sb.request("doomed", "exec sleep 600"));
  REQUIRE(launched);
  const auto pgid = read_record(sb, launched->provider_id).at("pgid").get<pid_t>();
  REQUIRE(::kill(-pgid, SIGKILL) == 0);
  REQUIRE(eventually([&] { return processes_tagged(sb.tag).empty(); }, 5'000));

  const auto listed = do_list(loop, provider);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().state == InstanceState::Gone);
  CHECK_FALSE(listed->front().message.empty());

  const auto again = do_list(loop, provider);
  REQUIRE(again);
  CHECK(again->empty());
  const auto described = do_describe(loop, provider, launched->provider_id);
  REQUIRE(described);
  CHECK(described->state == InstanceState::Gone);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 100));

  // The key is free again: a new launch starts a new instance.
  const auto relaunched = do_launch(loop, provider, sb.request("doomed", "exec sleep 600"));
  REQUIRE(relaunched);
  CHECK_FALSE(relaunched->existing);
  REQUIRE(do_terminate(loop, provider, relaunched->provider_id, 1'000));
}

TEST_CASE("local: state, record and instance files are private under umask 022") {
  Sandbox sb;
  TestLoop loop;
  const mode_t saved = ::umask(022);
  LocalProvider provider(loop.get(), sb.local_options());
  auto req = sb.request("modes1", "exec sleep 30");
  req.agent.enrollment_token = "secret-token";
  const auto launched = do_launch(loop, provider, req);
  ::umask(saved);
  REQUIRE(launched);
  const auto mode = [](const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  CHECK(mode(sb.dir / "state") == 0700);
  CHECK(mode(sb.dir / "state" / "records") == 0700);
  CHECK(mode(sb.dir / "state" / "instances") == 0700);
  CHECK(mode(sb.dir / "state" / "instances" / launched->provider_id) == 0700);
  CHECK(mode(sb.dir / "state" / "records" / (launched->provider_id + ".json")) == 0600);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 2'000));

  SECTION("looser directories left by an older coordinator are tightened at start") {
    REQUIRE(::chmod((sb.dir / "state").c_str(), 0755) == 0);
    REQUIRE(::chmod((sb.dir / "state" / "instances").c_str(), 0755) == 0);
    LocalProvider restarted(loop.get(), sb.local_options());
    CHECK(mode(sb.dir / "state") == 0700);
    CHECK(mode(sb.dir / "state" / "instances") == 0700);
  }
}

TEST_CASE("local: env_files are read at launch into the application's environment") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  const fs::path secret = sb.dir / "db-password";
  {
    std::ofstream out(secret);
    out << "s3cr3t value\n";
  }
  auto req = sb.request("envf1", "env > \"$MARK_DIR/app-env.txt\"; exec sleep 30");
  req.launch.env = {{"MARK_DIR", sb.dir.string()}};
  req.launch.env_files = {{"DB_PASSWORD", secret.string()}};
  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  REQUIRE(eventually([&] { return fs::exists(sb.dir / "app-env.txt") && !read_file(sb.dir / "app-env.txt").empty(); },
                     5'000));
  // One trailing newline is the file's, not the secret's.
  CHECK(read_file(sb.dir / "app-env.txt").find("DB_PASSWORD=s3cr3t value\n") != std::string::npos);
  // The value is not written to the provider's state.
  CHECK(read_file(sb.dir / "state" / "records" / (launched->provider_id + ".json")).find("s3cr3t") ==
        std::string::npos);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 2'000));

  auto missing = sb.request("envf2", "exec sleep 30");
  missing.launch.env_files = {{"API_KEY", (sb.dir / "no-such-file").string()}};
  const auto failed = do_launch(loop, provider, missing);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message.find("env_files.API_KEY") != std::string::npos);
  CHECK(failed.error().message.find("no-such-file") != std::string::npos);
  CHECK(failed.error().message.find("No such file") != std::string::npos);
  CHECK_FALSE(fs::exists(sb.dir / "state" / "records" / (missing.idempotency_key + ".json")));

  auto relative = sb.request("envf3", "exec sleep 30");
  relative.launch.env_files = {{"API_KEY", "secret.txt"}};
  const auto refused = do_launch(loop, provider, relative);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("not an absolute path") != std::string::npos);
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("exec: the launch request carries env_files as paths") {
  LaunchRequest req;
  req.launch.env_files = {{"DB_PASSWORD", "/etc/tide/secrets/db"}};
  CHECK(launch_request_json(req).at("launch").at("env_files").at("DB_PASSWORD") == "/etc/tide/secrets/db");
}

TEST_CASE("local: bad launch requests get clear errors") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());

  auto no_command = sb.request("bad1", "");
  auto r1 = do_launch(loop, provider, no_command);
  REQUIRE_FALSE(r1);
  CHECK(r1.error().message.find("empty command") != std::string::npos);
  CHECK_FALSE(r1.error().retryable);

  auto bad_id = sb.request("bad2", "sleep 1");
  bad_id.idempotency_key = "../escape";
  auto r2 = do_launch(loop, provider, bad_id);
  REQUIRE_FALSE(r2);
  CHECK(r2.error().message.find("idempotency_key") != std::string::npos);

  auto no_agent = sb.request("bad3", "sleep 1");
  no_agent.agent.agent_path = (sb.dir / "no-such-agent").string();
  auto r3 = do_launch(loop, provider, no_agent);
  REQUIRE_FALSE(r3);
  CHECK(r3.error().message.find("not executable") != std::string::npos);

  auto no_port = sb.request("bad4", "sleep 1");
  no_port.launch.port = 0;
  CHECK_FALSE(do_launch(loop, provider, no_port));

  CHECK(provider.metrics().launch.calls == 4);
  CHECK(provider.metrics().launch.failures == 4);
  CHECK(processes_tagged(sb.tag).empty());
}

// ---- exit reports -------------------------------------------------------------

namespace {

// Collects what the exit handler reports, with when it arrived.
struct ExitLog {
  std::vector<InstanceExit> exits;
  std::vector<Clock::time_point> at;
  ExitHandler handler() {
    return [this](InstanceExit e) {
      exits.push_back(std::move(e));
      at.push_back(Clock::now());
    };
  }
};

bool running(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

LaunchRequest with_fake_agent(LaunchRequest r) {
  r.agent.agent_path = kData + "/fake-agent";
  r.agent.coordinator_endpoint = "tcp://127.0.0.1:9";
  r.agent.enrollment_token = "tok";
  return r;
}

struct Pids {
  pid_t leader = 0;
  pid_t app = 0;
  pid_t agent = 0;
};

Pids pids_of(const Sandbox& sb, const std::string& id) {
  const auto record = read_record(sb, id);
  return Pids{record.at("leader").at("pid").get<pid_t>(), record.at("app").at("pid").get<pid_t>(),
              record.at("agent").at("pid").get<pid_t>()};
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

TEST_CASE("exit report: the output tail keeps the last lines, whole and printable") {
  CHECK(output_tail("one\ntwo\n", false) == "one | two");
  CHECK(output_tail("1\n2\n\n3\n4\n5\n6\n7\n", false) == "3 | 4 | 5 | 6 | 7");
  CHECK(output_tail("1\n2\n3\n", false, 2) == "2 | 3");
  CHECK(output_tail("tial line\nwhole line\n", true) == "whole line");
  CHECK(output_tail("only a partial line", true) == "only a partial line");
  CHECK(output_tail("a\tb\x01\r\n", false) == "a b?");
  CHECK(output_tail("caf\xc3\xa9 \xe2\x82\xac ok\n", false) == "caf\xc3\xa9 \xe2\x82\xac ok");
  CHECK(output_tail("bad \xc3 \xff \xed\xa0\x80 end\n", false) == "bad ? ? ??? end");
  CHECK(output_tail("cut \xe2\x82", false) == "cut ??");
  CHECK(output_tail("", false).empty());
  CHECK(output_tail("\n  \n", false).empty());
}

TEST_CASE("exit report: statuses, signals and unknown exits are described") {
  CHECK(signal_from_shell_status(137) == 9);
  CHECK(signal_from_shell_status(143) == 15);
  CHECK(signal_from_shell_status(128) == 0);
  CHECK(signal_from_shell_status(127) == 0);
  CHECK(signal_from_shell_status(255) == 0);
  CHECK(describe_app_exit(127, 40, "sh: 1: nosuch: not found") ==
        "application exited with status 127 after 0.04 s; last output: sh: 1: nosuch: not found");
  CHECK(describe_app_exit(137, 1'234, "") == "application was killed by signal 9 (SIGKILL) after 1.23 s");
  CHECK(describe_app_exit(-1, 5'000, "x") ==
        "application exited (status unknown: its launcher was gone) after 5.00 s; last output: x");
  CHECK(describe_app_exit(0, -5, "") == "application exited with status 0 after 0.00 s");
}

TEST_CASE("local: kill -9 of a launched application is reported once, and its agent is stopped") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  ExitLog log;
  provider.set_exit_handler(log.handler());
  const auto req = with_fake_agent(sb.request("killed", "echo serving; exec sleep 600"));
  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  const auto pids = pids_of(sb, launched->provider_id);
  REQUIRE(pids.agent > 0);
  REQUIRE(eventually([&] { return running(pids.agent) && running(pids.app); }, 5'000));
  loop.spin([] { return false; }, 200);  // the application runs a while
  CHECK(log.exits.empty());

  const auto killed_at = Clock::now();
  REQUIRE(::kill(pids.app, SIGKILL) == 0);
  loop.spin([&] { return !log.exits.empty(); }, 10'000);
  REQUIRE(log.exits.size() == 1);
  std::printf("kill -9 -> exit handler: %.1f ms\n", ms_between(killed_at, log.at.front()));
  const auto& exit = log.exits.front();
  CHECK(exit.provider_id == launched->provider_id);
  CHECK(exit.instance_id == req.instance_id);
  CHECK(exit.term_signal == SIGKILL);
  CHECK(exit.exit_status == 128 + SIGKILL);
  CHECK(exit.message.find("killed by signal 9 (SIGKILL)") != std::string::npos);
  CHECK(exit.output_tail == "serving");
  CHECK(exit.uptime_ms >= 100);
  CHECK(exit.uptime_ms < 60'000);

  // The agent beside the dead application does not go on reporting.
  CHECK(eventually([&] { return !running(pids.agent); }, 10'000));
  loop.spin([] { return false; }, 300);
  CHECK(log.exits.size() == 1);  // once

  const auto listed = do_list(loop, provider);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().state == InstanceState::Gone);
  CHECK(listed->front().message.find("SIGKILL") != std::string::npos);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 1'000));  // still succeeds
  CHECK(processes_tagged(sb.tag).empty());
  CHECK(log.exits.size() == 1);
}

TEST_CASE("local: an application that exits at once is reported with its status and last output") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  ExitLog log;
  provider.set_exit_handler(log.handler());
  struct Case {
    std::string name;
    std::string command;
    int status;
    std::string output;
  };
  const std::vector<Case> cases{
      {"exit3", "echo starting up; echo giving up >&2; exit 3", 3, "starting up | giving up"},
      {"nosuch", "nosuch-command-tide --flag", 127, "nosuch-command-tide: not found"},
      {"clean", "true", 0, ""},
  };
  std::map<std::string, LaunchResult> launched;
  for (const auto& c : cases) {
    const auto r = do_launch(loop, provider, with_fake_agent(sb.request(c.name, c.command)));
    REQUIRE(r);
    launched[c.name] = *r;
  }
  loop.spin([&] { return log.exits.size() >= cases.size(); }, 10'000);
  loop.spin([] { return false; }, 300);  // nothing more comes
  REQUIRE(log.exits.size() == cases.size());
  for (const auto& c : cases) {
    INFO(c.name);
    const auto it = std::find_if(log.exits.begin(), log.exits.end(),
                                 [&](const InstanceExit& e) { return e.instance_id == sb.tag + c.name; });
    REQUIRE(it != log.exits.end());
    INFO(it->message);
    CHECK(it->provider_id == launched[c.name].provider_id);
    CHECK(it->exit_status == c.status);
    CHECK(it->term_signal == 0);
    CHECK(it->message.rfind("application exited with status " + std::to_string(c.status) + " after ", 0) == 0);
    CHECK(it->output_tail.find(c.output) != std::string::npos);
    if (!c.output.empty()) CHECK(it->message.find("; last output: ") != std::string::npos);
    CHECK(it->uptime_ms >= 0);
    CHECK(it->uptime_ms < 5'000);
  }
  // The agents were stopped, the instances are gone, terminate still succeeds.
  CHECK(eventually([&] { return processes_tagged(sb.tag).empty(); }, 10'000));
  for (const auto& [name, r] : launched) REQUIRE(do_terminate(loop, provider, r.provider_id, 1'000));
  CHECK(log.exits.size() == cases.size());
}

TEST_CASE("local: terminate() is not reported as an exit") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  ExitLog log;
  provider.set_exit_handler(log.handler());
  const auto plain = do_launch(loop, provider, with_fake_agent(sb.request("asked1", "exec sleep 600")));
  const auto stubborn = do_launch(loop, provider, sb.request("asked2", "trap '' TERM; while :; do sleep 0.05; done"));
  REQUIRE(plain);
  REQUIRE(stubborn);
  loop.spin([] { return false; }, 200);  // let the watches start
  REQUIRE(do_terminate(loop, provider, plain->provider_id, 2'000));
  REQUIRE(do_terminate(loop, provider, stubborn->provider_id, 200));  // SIGKILL after the grace
  loop.spin([] { return false; }, 500);
  CHECK(log.exits.empty());
  CHECK(processes_tagged(sb.tag).empty());
}

TEST_CASE("local: a restarted provider reports exits of the instances it adopts, once") {
  Sandbox sb;
  TestLoop loop;
  std::map<std::string, LaunchResult> launched;
  {
    LocalProvider before(loop.get(), sb.local_options());
    ExitLog unused;
    before.set_exit_handler(unused.handler());
    for (const char* name : {"live", "died"}) {
      auto r = do_launch(loop, before, with_fake_agent(sb.request(name, "echo up; exec sleep 600")));
      REQUIRE(r);
      launched[name] = *r;
    }
  }  // the "coordinator" goes away; its instances keep running
  // One application dies while no coordinator runs; its launcher notes it.
  const auto died = pids_of(sb, launched["died"].provider_id);
  REQUIRE(::kill(died.app, SIGKILL) == 0);
  REQUIRE(eventually([&] { return !running(died.leader); }, 10'000));

  const auto live = pids_of(sb, launched["live"].provider_id);
  ExitLog log;
  {
    LocalProvider after(loop.get(), sb.local_options());
    after.set_exit_handler(log.handler());
    // The exit that happened meanwhile is reported as soon as it is seen.
    loop.spin([&] { return !log.exits.empty(); }, 10'000);
    REQUIRE(log.exits.size() == 1);
    CHECK(log.exits[0].instance_id == sb.tag + "died");
    CHECK(log.exits[0].term_signal == SIGKILL);
    CHECK(log.exits[0].output_tail == "up");

    loop.spin([] { return false; }, 300);  // the adopted application is watched
    CHECK(running(live.app));
    const auto killed_at = Clock::now();
    REQUIRE(::kill(live.app, SIGKILL) == 0);
    loop.spin([&] { return log.exits.size() >= 2; }, 10'000);
    REQUIRE(log.exits.size() == 2);
    std::printf("kill -9 -> exit handler (adopted): %.1f ms\n", ms_between(killed_at, log.at[1]));
    CHECK(log.exits[1].provider_id == launched["live"].provider_id);
    CHECK(log.exits[1].instance_id == sb.tag + "live");
    CHECK(log.exits[1].term_signal == SIGKILL);
    CHECK(eventually([&] { return !running(live.agent); }, 10'000));
  }
  // A third start over the same state dir does not report them again.
  LocalProvider third(loop.get(), sb.local_options());
  ExitLog again;
  third.set_exit_handler(again.handler());
  loop.spin([] { return false; }, 500);
  CHECK(again.exits.empty());
  const auto listed = do_list(loop, third);
  REQUIRE(listed);
  CHECK(listed->size() == 2);
  for (const auto& i : *listed) CHECK(i.state == InstanceState::Gone);
  for (const auto& [name, r] : launched) REQUIRE(do_terminate(loop, third, r.provider_id, 1'000));
  CHECK(processes_tagged(sb.tag).empty());
  CHECK(log.exits.size() == 2);
}

TEST_CASE("local: the agent of an application that died after its launcher is stopped by the provider") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  ExitLog log;
  provider.set_exit_handler(log.handler());
  const auto launched = do_launch(loop, provider, with_fake_agent(sb.request("orphan", "exec sleep 600")));
  REQUIRE(launched);
  const auto pids = pids_of(sb, launched->provider_id);
  REQUIRE(eventually([&] { return running(pids.agent); }, 5'000));
  REQUIRE(::kill(pids.leader, SIGKILL) == 0);  // nobody is left to stop the agent
  loop.spin([&] { return !running(pids.leader); }, 5'000);
  CHECK(running(pids.app));
  CHECK(log.exits.empty());

  REQUIRE(::kill(pids.app, SIGKILL) == 0);
  loop.spin([&] { return !log.exits.empty(); }, 10'000);
  REQUIRE(log.exits.size() == 1);
  CHECK(log.exits[0].exit_status == -1);  // only the launcher could have seen it
  CHECK(log.exits[0].message.find("status unknown") != std::string::npos);
  CHECK(eventually([&] { return !running(pids.agent); }, 10'000));
  const auto described = do_describe(loop, provider, launched->provider_id);
  REQUIRE(described);
  CHECK(described->state == InstanceState::Gone);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 1'000));
  CHECK(processes_tagged(sb.tag).empty());
}

// Informal: kill -9 -> handler latency over many instances. Run with
// `provider_tests "[latency]"`.
TEST_CASE("local: exit report latency", "[.][latency]") {
  Sandbox sb;
  TestLoop loop;
  LocalProvider provider(loop.get(), sb.local_options());
  ExitLog log;
  provider.set_exit_handler(log.handler());
  std::vector<double> samples;
  for (int i = 0; i < 30; ++i) {
    const auto r = do_launch(loop, provider, with_fake_agent(sb.request("lat" + std::to_string(i), "exec sleep 600")));
    REQUIRE(r);
    const auto pids = pids_of(sb, r->provider_id);
    loop.spin([] { return false; }, 50);
    const std::size_t before = log.exits.size();
    const auto t0 = Clock::now();
    REQUIRE(::kill(pids.app, SIGKILL) == 0);
    loop.spin([&] { return log.exits.size() > before; }, 10'000);
    REQUIRE(log.exits.size() == before + 1);
    samples.push_back(ms_between(t0, log.at.back()));
    REQUIRE(do_terminate(loop, provider, r->provider_id, 1'000));
  }
  std::sort(samples.begin(), samples.end());
  std::printf("kill -9 -> exit handler over %zu: min %.1f ms, median %.1f ms, p90 %.1f ms, max %.1f ms\n",
              samples.size(), samples.front(), samples[samples.size() / 2], samples[samples.size() * 9 / 10],
              samples.back());
}

// ---- exec provider ---------------------------------------------------------

namespace {

ExecProviderOptions fake_cloud(const Sandbox& sb, const std::string& fault = {}) {
  ExecProviderOptions o;
  o.launch_script = kData + "/fake-cloud/launch";
  o.terminate_script = kData + "/fake-cloud/terminate";
  o.list_script = kData + "/fake-cloud/list";
  o.describe_script = kData + "/fake-cloud/describe";
  o.env = {{"FAKE_CLOUD_DIR", (sb.dir / "cloud").string()}, {"FAKE_CLOUD_FAULT", fault}};
  o.launch_timeout_ms = 10'000;
  o.terminate_timeout_ms = 10'000;
  o.list_timeout_ms = 10'000;
  o.describe_timeout_ms = 10'000;
  return o;
}

bool pid_alive(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

}  // namespace

TEST_CASE("exec: launch, list, describe and terminate through the fake cloud scripts") {
  Sandbox sb;
  TestLoop loop;
  ExecProvider provider(loop.get(), fake_cloud(sb));
  const auto req = sb.request("e1", "unused");

  const auto launched = do_launch(loop, provider, req);
  REQUIRE(launched);
  CHECK(launched->provider_id == "fake-" + req.idempotency_key);
  CHECK(launched->address == "127.0.0.1");
  CHECK(launched->port == sb.port);
  CHECK_FALSE(launched->existing);
  const auto pid = static_cast<pid_t>(
      std::stol(read_file(sb.dir / "cloud" / "instances" / launched->provider_id / "pid")));
  CHECK(pid_alive(pid));

  const auto again = do_launch(loop, provider, req);
  REQUIRE(again);
  CHECK(again->existing);
  CHECK(again->provider_id == launched->provider_id);

  const auto listed = do_list(loop, provider);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().instance_id == req.instance_id);
  CHECK(listed->front().idempotency_key == req.idempotency_key);
  CHECK(listed->front().group == "web");
  CHECK(listed->front().state == InstanceState::Running);
  CHECK(listed->front().started_at_ms > 0);

  const auto described = do_describe(loop, provider, launched->provider_id);
  REQUIRE(described);
  CHECK(described->state == InstanceState::Running);

  REQUIRE(do_terminate(loop, provider, launched->provider_id, 1'000));
  CHECK_FALSE(pid_alive(pid));
  const auto gone = do_describe(loop, provider, launched->provider_id);
  REQUIRE(gone);
  CHECK(gone->state == InstanceState::Gone);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 1'000));  // idempotent
  const auto empty = do_list(loop, provider);
  REQUIRE(empty);
  CHECK(empty->empty());

  CHECK(provider.metrics().launch.calls == 2);
  CHECK(provider.metrics().list.calls == 2);
  CHECK(provider.metrics().describe.calls == 2);
  CHECK(provider.metrics().terminate.calls == 2);
  CHECK(provider.metrics().launch.failures == 0);
}

TEST_CASE("exec: describe without a describe script answers from list") {
  Sandbox sb;
  TestLoop loop;
  auto options = fake_cloud(sb);
  options.describe_script.clear();
  ExecProvider provider(loop.get(), options);
  const auto launched = do_launch(loop, provider, sb.request("e2", "unused"));
  REQUIRE(launched);
  const auto described = do_describe(loop, provider, launched->provider_id);
  REQUIRE(described);
  CHECK(described->state == InstanceState::Running);
  const auto unknown = do_describe(loop, provider, "fake-nobody");
  REQUIRE(unknown);
  CHECK(unknown->state == InstanceState::Gone);
  REQUIRE(do_terminate(loop, provider, launched->provider_id, 500));
}

TEST_CASE("exec: a script that overruns its timeout is killed with what it started") {
  Sandbox sb;
  TestLoop loop;
  auto options = fake_cloud(sb, "launch:hang");
  options.launch_timeout_ms = 300;
  ExecProvider provider(loop.get(), options);
  const auto t0 = Clock::now();
  const auto r = do_launch(loop, provider, sb.request("slow", "unused"));
  const auto elapsed = Clock::now() - t0;
  REQUIRE_FALSE(r);
  CHECK(r.error().retryable);
  CHECK(r.error().message.find("timed out after 300 ms") != std::string::npos);
  CHECK(elapsed >= std::chrono::milliseconds(300));
  CHECK(elapsed < std::chrono::seconds(3));
  const auto hang_pid = static_cast<pid_t>(std::stol(read_file(sb.dir / "cloud" / "hang.pid")));
  CHECK(eventually([&] { return !pid_alive(hang_pid); }, 2'000));
  CHECK(provider.metrics().launch.failures == 1);
}

TEST_CASE("exec: malformed script output is an error naming what was wrong") {
  Sandbox sb;
  TestLoop loop;
  SECTION("not JSON") {
    ExecProvider provider(loop.get(), fake_cloud(sb, "launch:badjson"));
    const auto r = do_launch(loop, provider, sb.request("bj", "unused"));
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("invalid JSON") != std::string::npos);
    CHECK_FALSE(r.error().retryable);
  }
  SECTION("wrong field type") {
    ExecProvider provider(loop.get(), fake_cloud(sb, "launch:badfield"));
    const auto r = do_launch(loop, provider, sb.request("bf", "unused"));
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("\"port\" is not an integer") != std::string::npos);
  }
  SECTION("list without an instances array") {
    ExecProvider provider(loop.get(), fake_cloud(sb, "list:badfield"));
    const auto r = do_list(loop, provider);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("\"instances\" is not an array") != std::string::npos);
    CHECK(provider.metrics().list.failures == 1);
  }
}

TEST_CASE("exec: a non-zero exit is an error carrying the script's stderr") {
  Sandbox sb;
  TestLoop loop;
  SECTION("permanent") {
    ExecProvider provider(loop.get(), fake_cloud(sb, "launch:fail"));
    const auto r = do_launch(loop, provider, sb.request("f", "unused"));
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("exited with status 3") != std::string::npos);
    CHECK(r.error().message.find("quota exceeded") != std::string::npos);
    CHECK_FALSE(r.error().retryable);
  }
  SECTION("retryable (75)") {
    ExecProvider provider(loop.get(), fake_cloud(sb, "terminate:tempfail"));
    const auto r = do_terminate(loop, provider, "fake-x", 100);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("rate limited") != std::string::npos);
    CHECK(r.error().retryable);
  }
  SECTION("missing script") {
    auto options = fake_cloud(sb);
    options.list_script = (sb.dir / "no-such-script").string();
    ExecProvider provider(loop.get(), options);
    const auto r = do_list(loop, provider);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("cannot start") != std::string::npos);
  }
}
