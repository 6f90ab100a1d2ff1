// tidectl as a user meets it: the real binary against a real Server (local
// provider, no load balancer, a temporary state directory) over HTTP on
// 127.0.0.1, and the shell completion it generates run by a real bash.
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/integration/coordinator/server/server_fixture.hpp"

using namespace tide::coordinator::test;
using nlohmann::json;

namespace {

const std::string kTidectl = std::string(TIDE_BIN_DIR) + "/tidectl";

// What bash's completion offers for the words typed so far (the last one
// being completed), with the script `tidectl completion bash` printed.
std::string bash_completes(const std::string& words) {
  const std::string script = "source <(" + kTidectl + " completion bash) && COMP_WORDS=(" + words +
                             ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _tidectl && echo \"${COMPREPLY[*]}\"";
  auto result = run("bash -c '" + script + "'");
  REQUIRE(result.exit_code == 0);
  return result.output;
}

}  // namespace

TEST_CASE("tidectl completion: bash offers the commands, aliases, flags and values of the command typed so far",
          "[tidectl][completion]") {
  CHECK(bash_completes("tidectl gr") == "group\n");
  CHECK(bash_completes("tidectl group \"\"") == "create list show set enable disable metrics delete\n");
  CHECK(bash_completes("tidectl launch-config cr") == "create\n");  // an alias leads to its command
  // Global flags and their values are skipped wherever they stand.
  CHECK(bash_completes("tidectl -o json group create web --mi") == "--min\n");
  CHECK(bash_completes("tidectl --endpoint http://h:1 instance l") == "list\n");
  CHECK(bash_completes("tidectl group list -o \"\"") == "table wide json yaml\n");
  CHECK(bash_completes("tidectl completion \"\"") == "bash zsh\n");
  // Every command the help lists is offered at the top.
  const std::string top = bash_completes("tidectl \"\"");
  for (const char* command : {"lc", "group", "instance", "activity", "schedule", "policy", "rollout", "apply", "cost"}) {
    CHECK(top.find(command) != std::string::npos);
  }
  // zsh's script is well-formed where zsh is installed; both need no coordinator.
  auto zsh = run(kTidectl + " completion zsh");
  CHECK(zsh.exit_code == 0);
  CHECK(zsh.output.starts_with("#compdef tidectl"));
  if (run("command -v zsh").exit_code == 0) {
    CHECK(run(kTidectl + " completion zsh > /tmp/tidectl-completion-test.zsh && zsh -n /tmp/tidectl-completion-test.zsh").exit_code == 0);
  }
  auto bad = run(kTidectl + " completion fish");
  CHECK(bad.exit_code == 2);
}

TEST_CASE("durations: one syntax in the CLI and the API (`10s`, `5m`, `1h30m`), millisecond fields still accepted",
          "[tidectl][api]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = kTidectl + " --endpoint " + server.endpoint();
  REQUIRE(server.call("POST", "/v1/launch-configurations", json{{"id", "web"}, {"command", "sleep 1000"}, {"port", 8080}})
              .status == 201);

  // The API: `<name>` with a typed duration, or `<name>_ms`, never both.
  auto typed = server.call("POST", "/v1/groups",
                           json{{"name", "typed"}, {"launch_configuration", "web"}, {"min", 0}, {"max", 2},
                                {"default_cooldown", "1m30s"}, {"drain_timeout", "500ms"}, {"warmup_ms", 2000}});
  REQUIRE(typed.status == 201);
  CHECK(typed.body["default_cooldown_ms"] == 90'000);
  CHECK(typed.body["drain_timeout_ms"] == 500);
  CHECK(typed.body["warmup_ms"] == 2'000);
  auto both = server.call("POST", "/v1/groups",
                          json{{"name", "both"}, {"launch_configuration", "web"}, {"min", 0}, {"max", 2},
                               {"warmup", "2s"}, {"warmup_ms", 2000}});
  CHECK(both.status == 400);
  CHECK(both.body["field"] == "warmup");
  for (const json& bad : {json("10"), json(10), json("10 s"), json("-5s"), json("1x"), json("")}) {
    INFO(bad.dump());
    auto refused = server.call("POST", "/v1/groups",
                               json{{"name", "bad"}, {"launch_configuration", "web"}, {"min", 0}, {"max", 2},
                                    {"boot_timeout", bad}});
    CHECK(refused.status == 400);
    CHECK(refused.body["field"] == "boot_timeout");
  }
  auto out_of_range = server.call("POST", "/v1/groups",
                                  json{{"name", "bad"}, {"launch_configuration", "web"}, {"min", 0}, {"max", 2},
                                       {"boot_timeout", "2d"}});
  CHECK(out_of_range.status == 400);
  CHECK(out_of_range.body["error"] == "boot_timeout: must be 1s..24h");
  auto policy = server.call("PUT", "/v1/groups/typed/policies/p",
                            json{{"type", "alarm"}, {"metric", "cpu"}, {"comparison", ">"}, {"threshold", 50},
                                 {"period", "1500ms"}, {"adjustment", 1}});
  CHECK(policy.status == 400);
  CHECK(policy.body["field"] == "period");

  // The CLI: every duration flag takes the same forms (a bare number: seconds).
  auto created = run(tidectl + " group create cli --launch-config web --min 0 --max 2 --cooldown 60s "
                               "--drain-timeout 1m --boot-timeout 90 --warmup 1h30m -o json");
  REQUIRE(created.exit_code == 0);
  const json group = json::parse(created.output);
  CHECK(group["default_cooldown_ms"] == 60'000);
  CHECK(group["drain_timeout_ms"] == 60'000);
  CHECK(group["boot_timeout_ms"] == 90'000);
  CHECK(group["warmup_ms"] == 5'400'000);
  auto bad_flag = run(tidectl + " group create cli2 --launch-config web --min 0 --max 2 --cooldown 5x");
  CHECK(bad_flag.exit_code == 2);
  CHECK(bad_flag.output.find("--cooldown: '5x' is not a duration") != std::string::npos);
}

TEST_CASE("errors name the flag the user typed; counts out of range say so briefly", "[tidectl]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = kTidectl + " --endpoint " + server.endpoint();
  REQUIRE(run(tidectl + " lc create web --command 'sleep 1000' --port 8080").exit_code == 0);
  REQUIRE(run(tidectl + " group create web --launch-config web --min 0 --max 2").exit_code == 0);
  // The API answers "period_ms: ..." / "min: ..."; tidectl says which flag.
  auto period = run(tidectl + " policy put web high --metric cpu --comparison '>' --threshold 50 --period 1500ms "
                              "--adjustment 1");
  CHECK(period.exit_code == 1);
  CHECK(period.output.find("--period: must be a whole number of seconds") != std::string::npos);
  auto cross = run(tidectl + " group set web --min 3");
  CHECK(cross.exit_code == 1);
  CHECK(cross.output.find("--min: ") != std::string::npos);
  auto negative = run(tidectl + " group set web --desired -1");
  CHECK(negative.exit_code == 2);
  CHECK(negative.output.find("--desired: Value -1 not in range 0 to 10000") != std::string::npos);
  CHECK(negative.output.size() < 200);
}

TEST_CASE("connection errors say what failed: a bad endpoint, a closed port, a server that is not tide",
          "[tidectl]") {
  auto bare = run(kTidectl + " --endpoint foo status");
  CHECK(bare.exit_code == 3);
  CHECK(bare.output.find("invalid endpoint 'foo'") != std::string::npos);
  auto port = run(kTidectl + " --endpoint http://127.0.0.1:99999 status");
  CHECK(port.output.find("the port must be 1..65535") != std::string::npos);
  auto scheme = run(kTidectl + " --endpoint ftp://127.0.0.1:21 status");
  CHECK(scheme.output.find("the scheme must be http or https") != std::string::npos);
  // A port nobody listens on: the system's reason, not httplib's "Connection".
  auto closed = run(kTidectl + " --endpoint http://127.0.0.1:1 status");
  CHECK(closed.exit_code == 3);
  CHECK(closed.output.find("could not connect (Connection refused)") != std::string::npos);

  // Some other web server at the address.
  httplib::Server other;
  other.Get(".*", [](const httplib::Request&, httplib::Response& response) {
    response.status = 404;
    response.set_content("<html>not found</html>", "text/html");
  });
  const int other_port = other.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { other.listen_after_bind(); });
  auto foreign = run(kTidectl + " --endpoint http://127.0.0.1:" + std::to_string(other_port) + " group list");
  other.stop();
  serving.join();
  CHECK(foreign.exit_code == 3);
  CHECK(foreign.output.find("is not a tide coordinator: it answered GET /v1/groups with HTTP 404") !=
        std::string::npos);

  // A trailing slash (or a path prefix's) is not part of the request path.
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  auto slash = run(kTidectl + " --endpoint " + server.endpoint() + "/ group list");
  CHECK(slash.exit_code == 0);
  CHECK(slash.output == "(none)\n");
}
