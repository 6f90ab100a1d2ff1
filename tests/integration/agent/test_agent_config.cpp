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
