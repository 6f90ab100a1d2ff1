// tide-agent --check-config: errors name the file, the key and what is wrong.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/io/config.hpp"

namespace {

struct Run {
  int status = -1;
  std::string output;
};

Run check(const std::string& yaml, const std::string& env = "") {
  const auto path = std::filesystem::temp_directory_path() / ("tide-agent-config-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << yaml;
  const std::string cmd = "env -i " + env + " " + std::string(TIDE_BIN_DIR) + "/tide-agent --check-config --config " +
                          path.string() + " 2>&1";
  Run r;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) r.output += buf;
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::filesystem::remove(path);
  return r;
}

}  // namespace

TEST_CASE("check-config accepts the example configuration", "[agent][config]") {
  const auto example = std::string(TIDE_TEST_DATA_DIR) + "/../../packaging/agent.yaml.example";
  std::ifstream in(example);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string yaml = ss.str();
  auto r = check(yaml, "TIDE_INSTANCE_ID=i-1");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("configuration OK") != std::string::npos);
}

TEST_CASE("check-config names the file and line and key of an error", "[agent][config]") {
  auto r = check("readiness:\n  probes:\n    - type: http\n      url: http://127.0.0.1:1/\n      timeout_ms: -5\n",
                 "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(".yaml:5: readiness.probes[0].timeout_ms: must be an integer") != std::string::npos);

  r = check("instance:\n  idd: x\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(":2: instance.idd: unknown key") != std::string::npos);

  r = check("readiness:\n  probes:\n    - type: smtp\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.output.find("readiness.probes[0].type: must be http, tcp or exec, got 'smtp'") != std::string::npos);

  r = check("coordinator: [1, 2\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find("(syntax)") != std::string::npos);

  r = check("", "TIDE_INSTANCE_ID=bad/id");
  CHECK(r.status == 2);
  CHECK(r.output.find("instance.id (TIDE_INSTANCE_ID): must be") != std::string::npos);
}

TEST_CASE("environment overrides the file with _FILE variants and TIDE_READINESS_HTTP", "[agent][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("tide-agent-env-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "secret-token\n";
  std::ofstream(dir / "a.yaml") << "coordinator:\n  endpoint: tcp://10.0.0.1:7400\ninstance:\n  id: from-file\n  group: web\n";
  tide::agent::Environment env{{"TIDE_INSTANCE_ID", "from-env"},
                               {"TIDE_ENROLLMENT_TOKEN_FILE", (dir / "token").string()},
                               {"TIDE_COORDINATOR_ENDPOINT", "tcp://127.0.0.1:7500"},
                               {"TIDE_SERVICE_ADDRESS", "127.0.1.5"},
                               {"TIDE_SERVICE_PORT", "8080"},
                               {"TIDE_READINESS_HTTP", "http://127.0.1.5:8080/ready"},
                               {"TIDE_STATE_DIR", (dir / "state").string()}};
  auto c = tide::agent::load_config(dir / "a.yaml", env);
  REQUIRE(c);
  CHECK(c->instance_id == "from-env");
  CHECK(c->enrollment_token == "secret-token");
  CHECK(c->coordinator_endpoint == "tcp://127.0.0.1:7500");
  CHECK(c->service_address == "127.0.1.5");
  CHECK(c->service_port == 8080);
  CHECK(c->labels.at("group") == "web");
  CHECK(c->state_dir == dir / "state");
  REQUIRE(c->probes.size() == 1);
  CHECK(c->probes[0].url == "http://127.0.1.5:8080/ready");

  // No file at all: env only, as the local provider starts agents.
  auto env_only = tide::agent::load_config(std::nullopt, env);
  REQUIRE(env_only);
  CHECK(env_only->source == "(defaults)");

  env["TIDE_SERVICE_PORT"] = "70000";
  auto bad = tide::agent::load_config(std::nullopt, env);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().key == "TIDE_SERVICE_PORT");
  env["TIDE_SERVICE_PORT"] = "1";
  env.erase("TIDE_ENROLLMENT_TOKEN_FILE");
  env["TIDE_ENROLLMENT_TOKEN_FILE"] = (dir / "missing").string();
  bad = tide::agent::load_config(std::nullopt, env);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().key == "TIDE_ENROLLMENT_TOKEN_FILE");
  std::filesystem::remove_all(dir);
}

TEST_CASE("metrics.scope: host by default, session from the file or TIDE_METRICS_SCOPE, anything else refused",
          "[agent][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("tide-agent-scope-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "session.yaml") << "metrics:\n  scope: session\n";
  tide::agent::Environment env{{"TIDE_INSTANCE_ID", "i-1"}};
  auto defaults = tide::agent::load_config(std::nullopt, env);
  REQUIRE(defaults);
  CHECK(defaults->metrics_scope == tide::agent::MetricsScope::Host);
  auto from_file = tide::agent::load_config(dir / "session.yaml", env);
  REQUIRE(from_file);
  CHECK(from_file->metrics_scope == tide::agent::MetricsScope::Session);
  env["TIDE_METRICS_SCOPE"] = "session";
  auto from_env = tide::agent::load_config(std::nullopt, env);
  REQUIRE(from_env);
  CHECK(from_env->metrics_scope == tide::agent::MetricsScope::Session);
  env["TIDE_METRICS_SCOPE"] = "container";
  auto bad_env = tide::agent::load_config(std::nullopt, env);
  REQUIRE_FALSE(bad_env);
  CHECK(bad_env.error().key == "TIDE_METRICS_SCOPE");
  std::filesystem::remove_all(dir);

  const auto r = check("metrics:\n  scope: sessions\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(".yaml:2: metrics.scope: must be host or session, got 'sessions'") != std::string::npos);
}

TEST_CASE("readiness periods: defaults, file, per-probe, health checks", "[agent][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("tide-agent-periods-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const tide::agent::Environment env{{"TIDE_INSTANCE_ID", "i-1"}};

  // Defaults: 50 ms until the probe first passes, then 1 s.
  std::ofstream(dir / "defaults.yaml") << "readiness:\n  probes:\n    - type: tcp\n      address: 127.0.0.1:1\n"
                                          "health:\n  checks:\n    - type: tcp\n      name: alive\n      address: 127.0.0.1:1\n";
  auto c = tide::agent::load_config(dir / "defaults.yaml", env);
  REQUIRE(c);
  CHECK(c->readiness_period_ms == 1000);
  CHECK(c->readiness_startup_period_ms == 50);
  REQUIRE(c->probes.size() == 2);
  auto t = tide::agent::probe_timing(*c, c->probes[0]);
  CHECK(t.startup_period_ms == 50);
  CHECK(t.period_ms == 1000);
  // A health check starts passing: no startup period of its own.
  t = tide::agent::probe_timing(*c, c->probes[1]);
  CHECK(t.startup_period_ms == 1000);
  CHECK(t.period_ms == 1000);

  // The section sets every readiness probe's default; a probe's own keys win.
  std::ofstream(dir / "set.yaml") << "readiness:\n  period_ms: 2000\n  startup_period_ms: 50\n  probes:\n"
                                     "    - type: tcp\n      address: 127.0.0.1:1\n"
                                     "    - type: tcp\n      name: own\n      address: 127.0.0.1:2\n"
                                     "      period_ms: 500\n      startup_period_ms: 20\n";
  c = tide::agent::load_config(dir / "set.yaml", env);
  REQUIRE(c);
  REQUIRE(c->probes.size() == 2);
  t = tide::agent::probe_timing(*c, c->probes[0]);
  CHECK(t.startup_period_ms == 50);
  CHECK(t.period_ms == 2000);
  t = tide::agent::probe_timing(*c, c->probes[1]);
  CHECK(t.startup_period_ms == 20);
  CHECK(t.period_ms == 500);

  // The environment overrides the section (not a probe's own keys); an
  // empty value leaves what the file says.
  auto env2 = env;
  env2["TIDE_READINESS_PERIOD_MS"] = "250";
  env2["TIDE_READINESS_STARTUP_PERIOD_MS"] = "";
  c = tide::agent::load_config(dir / "set.yaml", env2);
  REQUIRE(c);
  CHECK(c->readiness_period_ms == 250);
  CHECK(c->readiness_startup_period_ms == 50);
  t = tide::agent::probe_timing(*c, c->probes[0]);
  CHECK(t.period_ms == 250);
  CHECK(tide::agent::probe_timing(*c, c->probes[1]).period_ms == 500);

  // Environment only, as the local provider starts agents: the env-http probe
  // takes the section's periods.
  auto env3 = env;
  env3["TIDE_READINESS_HTTP"] = "http://127.0.1.5:8080/ready";
  env3["TIDE_READINESS_PERIOD_MS"] = "300";
  env3["TIDE_READINESS_STARTUP_PERIOD_MS"] = "30";
  c = tide::agent::load_config(std::nullopt, env3);
  REQUIRE(c);
  REQUIRE(c->probes.size() == 1);
  t = tide::agent::probe_timing(*c, c->probes[0]);
  CHECK(t.period_ms == 300);
  CHECK(t.startup_period_ms == 30);

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"TIDE_READINESS_PERIOD_MS", "9"},
           {"TIDE_READINESS_PERIOD_MS", "60001"},
           {"TIDE_READINESS_STARTUP_PERIOD_MS", "fast"},
           {"TIDE_READINESS_STARTUP_PERIOD_MS", "-1"}}) {
    auto bad_env = env;
    bad_env[name] = value;
    auto bad = tide::agent::load_config(std::nullopt, bad_env);
    INFO(name << "=" << value);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().file == "(environment)");
    CHECK(bad.error().key == name);
    CHECK(bad.error().what.find("10..60000") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("check-config bounds the readiness periods and names file, line and key", "[agent][config]") {
  auto r = check("readiness:\n  period_ms: 5\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(".yaml:2: readiness.period_ms: must be an integer in 10..60000, got '5'") != std::string::npos);

  r = check("readiness:\n  notify: false\n  startup_period_ms: 60001\n", "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(".yaml:3: readiness.startup_period_ms: must be an integer in 10..60000, got '60001'") !=
        std::string::npos);

  r = check("readiness:\n  probes:\n    - type: http\n      url: http://127.0.0.1:1/\n      startup_period_ms: soon\n",
            "TIDE_INSTANCE_ID=i-1");
  CHECK(r.status == 2);
  CHECK(r.output.find(".yaml:5: readiness.probes[0].startup_period_ms: must be an integer in 10..60000") !=
        std::string::npos);

  r = check("readiness:\n  period_ms: 10\n  startup_period_ms: 60000\n", "TIDE_INSTANCE_ID=i-1");
  INFO(r.output);
  CHECK(r.status == 0);

  r = check("", "TIDE_INSTANCE_ID=i-1 TIDE_READINESS_PERIOD_MS=1");
  CHECK(r.status == 2);
  CHECK(r.output.find("(environment): TIDE_READINESS_PERIOD_MS: must be an integer in 10..60000, got '1'") !=
        std::string::npos);
}
