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
  CHECK(bash_completes("tidectl group \"\"") == "create list show set enable disable metrics history delete\n");
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

TEST_CASE("lc create: a new version starts from the previous one and says what changed", "[tidectl]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = kTidectl + " --endpoint " + server.endpoint();
  auto missing = run(tidectl + " lc create web --port 8080");
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("--command: required for the first version of 'web'") != std::string::npos);
  auto first = run(tidectl + " lc create web --command 'sleep 1000' --port 8080 --hourly-price 0.5 --env A=1 --env B=2");
  REQUIRE(first.exit_code == 0);
  CHECK(first.output == "web: version 1 created\n");
  // Only the port given: the price, the environment and the command stay.
  auto second = run(tidectl + " lc create web --port 8081 --unset-env B --env C=3");
  REQUIRE(second.exit_code == 0);
  CHECK(second.output.find("web: version 2 (from version 1)") != std::string::npos);
  CHECK(second.output.find("  port: 8080 -> 8081") != std::string::npos);
  CHECK(second.output.find("  env.B: 2 -> (removed)") != std::string::npos);
  CHECK(second.output.find("  env.C: (none) -> 3") != std::string::npos);
  const auto shown = server.call("GET", "/v1/launch-configurations/web");
  CHECK(shown.body["version"] == 2);
  CHECK(shown.body["hourly_price"] == 0.5);
  CHECK(shown.body["command"] == "sleep 1000");
  CHECK(shown.body["env"] == json{{"A", "1"}, {"C", "3"}});
  // Nothing that differs: no new version.
  auto same = run(tidectl + " lc create web --port 8081");
  CHECK(same.exit_code == 0);
  CHECK(same.output == "web: unchanged, still version 2 (nothing given differs from it)\n");
  CHECK(server.call("GET", "/v1/launch-configurations/web").body["version"] == 2);
  // --fresh: what is not given is the default again, and the change says so.
  auto fresh = run(tidectl + " lc create web --fresh --command 'sleep 2000' --port 8081");
  REQUIRE(fresh.exit_code == 0);
  CHECK(fresh.output.find("  hourly_price: 0.50 -> 0.00") != std::string::npos);
  auto bad = run(tidectl + " lc create web --unset-env NOPE");
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("--unset-env: 'NOPE' is not set in version 3") != std::string::npos);
}

TEST_CASE("output: times as RFC 3339, durations as typed, -o yaml and -o wide", "[tidectl]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = "TZ=Asia/Shanghai " + kTidectl + " --endpoint " + server.endpoint();
  REQUIRE(run(tidectl + " lc create web --command 'sleep 1000' --port 8080").exit_code == 0);
  REQUIRE(run(tidectl + " group create web --launch-config web --min 0 --max 3 --cooldown 5m").exit_code == 0);
  auto shown = run(tidectl + " group show web");
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.output.find("created_ms") == std::string::npos);
  CHECK(shown.output.find("default_cooldown: 5m\n") != std::string::npos);
  // The zone's offset, not epoch milliseconds.
  CHECK(shown.output.find("+08:00\n") != std::string::npos);
  CHECK(shown.output.find("created: 20") != std::string::npos);

  auto yaml = run(tidectl + " group show web -o yaml");
  REQUIRE(yaml.exit_code == 0);
  CHECK(yaml.output.find("name: web\n") != std::string::npos);
  CHECK(yaml.output.find("default_cooldown_ms: 300000\n") != std::string::npos);
  auto yaml_list = run(tidectl + " -o yaml group list");
  CHECK(yaml_list.output.starts_with("groups:\n  - "));
  CHECK(yaml_list.output.find("    name: web\n") != std::string::npos);
  CHECK(yaml_list.output.find("    termination_policy: oldest_instance\n") != std::string::npos);

  auto narrow = run(tidectl + " group list");
  auto wide = run(tidectl + " group list -o wide");
  REQUIRE(wide.exit_code == 0);
  CHECK(narrow.output.find("TERMINATION POLICY") == std::string::npos);
  CHECK(wide.output.find("TERMINATION POLICY") != std::string::npos);
  CHECK(wide.output.find("DEFAULT COOLDOWN") != std::string::npos);
  CHECK(wide.output.find("oldest_instance") != std::string::npos);

  // Activities: when each started (a time) and how long it took.
  REQUIRE(run(tidectl + " instance attach web --address 127.0.0.1 --port 9 --no-increment-desired").exit_code == 0);
  CHECK(server.call("GET", "/v1/groups/web").body["desired"] == 0);
  auto activities = run(tidectl + " activity list web");
  REQUIRE(activities.exit_code == 0);
  CHECK(activities.output.find("STARTED") != std::string::npos);
  CHECK(activities.output.find("DURATION") != std::string::npos);
  CHECK(activities.output.find("+08:00") != std::string::npos);
  CHECK(activities.output.find("attach") != std::string::npos);
  auto recent = run(tidectl + " activity list web --since 1h");
  CHECK(recent.output.find("attach") != std::string::npos);
  auto future = run(tidectl + " activity list web --since 2099-01-01T00:00");
  CHECK(future.exit_code == 0);
  CHECK(future.output == "(none)\n");
  auto bad_since = run(tidectl + " activity list web --since yesterday");
  CHECK(bad_since.exit_code == 2);
  CHECK(bad_since.output.find("--since: 'yesterday' is neither a duration ago") != std::string::npos);

  // -w prints the list again under a time-stamped title until stopped.
  auto watched = run("TZ=Asia/Shanghai timeout -s INT 5 " + kTidectl + " --endpoint " + server.endpoint() +
                     " instance list -g web -w");
  CHECK(watched.output.find("instances of web at ") != std::string::npos);
  std::size_t titles = 0;
  for (std::size_t at = watched.output.find("instances of web at "); at != std::string::npos;
       at = watched.output.find("instances of web at ", at + 1)) {
    ++titles;
  }
  CHECK(titles >= 2);
}

TEST_CASE("typos that can never work are refused or warned about", "[tidectl][api]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = kTidectl + " --endpoint " + server.endpoint();
  REQUIRE(run(tidectl + " lc create web --command 'sleep 1000' --port 8080").exit_code == 0);
  REQUIRE(run(tidectl + " group create web --launch-config web --min 0 --max 3").exit_code == 0);
  // cpu and memory are percentages.
  auto over = run(tidectl + " policy put web high --metric cpu --comparison '>' --threshold 101 --adjustment 1");
  CHECK(over.exit_code == 1);
  CHECK(over.output.find("--threshold: cpu is a percentage: the threshold must be 0..100") != std::string::npos);
  // A metric nothing reports: stored (an application may report it later), with a warning.
  auto typo = run(tidectl + " policy put web high --metric cpuu --comparison '>' --threshold 50 --adjustment 1");
  CHECK(typo.exit_code == 0);
  CHECK(typo.output.find("warning: no instance of web reports the metric 'cpuu' yet") != std::string::npos);
  auto builtin = run(tidectl + " policy put web high --metric cpu --comparison '>' --threshold 50 --adjustment 1");
  CHECK(builtin.exit_code == 0);
  CHECK(builtin.output.find("warning") == std::string::npos);
  // A one-shot action in the past would never fire.
  auto past = run(tidectl + " schedule put web once --start 2020-01-01T10:00Z --desired 2");
  CHECK(past.exit_code == 1);
  CHECK(past.output.find("--start: 2020-01-01T10:00:00Z is in the past") != std::string::npos);
  // Without --tz tidectl says which zone it used.
  auto zoned = run(tidectl + " schedule put web lunch --cron '0 11 * * *' --desired 2");
  CHECK(zoned.exit_code == 0);
  CHECK(zoned.output.find("no --tz given: the cron expression and --start/--end are in UTC") != std::string::npos);
}

TEST_CASE("apply: a fleet file takes typed durations wherever a *_ms field goes", "[tidectl][apply]") {
  ServerFixture server;
  REQUIRE(server.start_error().empty());
  const std::string tidectl = kTidectl + " --endpoint " + server.endpoint();
  auto applied = run(tidectl + " apply -f " + std::string(TIDE_TEST_DATA_DIR) + "/coordinator/apply/durations.yaml");
  INFO(applied.output);
  REQUIRE(applied.exit_code == 0);
  const auto group = server.call("GET", "/v1/groups/web").body;
  CHECK(group["default_cooldown_ms"] == 120'000);
  CHECK(group["drain_timeout_ms"] == 45'000);
  CHECK(server.call("GET", "/v1/launch-configurations/web").body["agent"]["readiness_period_ms"] == 200);
  const auto policy = server.call("GET", "/v1/groups/web/policies/cpu-high").body;
  CHECK(policy["period_ms"] == 10'000);
  CHECK(policy["cooldown_ms"] == 90'000);
  CHECK(server.call("GET", "/v1/groups/web/hooks/warm-cache").body["heartbeat_timeout_ms"] == 300'000);
  // A second apply of the same file changes nothing.
  auto again = run(tidectl + " apply -f " + std::string(TIDE_TEST_DATA_DIR) + "/coordinator/apply/durations.yaml");
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("nothing to change") != std::string::npos);
}
