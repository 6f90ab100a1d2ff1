// The coordinator's agents section: CURVE may be off only where nothing but
// this machine can reach the agent link (protocol/SPEC.md 10.4). The history
// section: durations within their bounds, errors that name the key.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/io/server/config.hpp"

using namespace tide::coordinator;

namespace {

tl::expected<CoordinatorConfig, ConfigError> agents(const std::string& listen, bool curve) {
  return parse_config("state_dir: /tmp/tide-x\nagents:\n  listen: " + listen +
                          "\n  curve: " + (curve ? "true" : "false") + "\n",
                      "c.yaml");
}

}  // namespace

TEST_CASE("agents.curve: false is accepted on a loopback or ipc:// listen address",
          "[config][curve]") {
  for (const std::string listen :
       {"tcp://127.0.0.1:7400", "tcp://127.0.0.1:*", "tcp://127.0.3.9:7400", "tcp://localhost:7400",
        "tcp://[::1]:7400", "ipc:///run/tide/agents.sock"}) {
    INFO(listen);
    auto config = agents(listen, false);
    REQUIRE(config);
    CHECK_FALSE(config->agents.curve);
  }
}

TEST_CASE("agents.curve: false on an address other machines reach is a config error",
          "[config][curve]") {
  for (const std::string listen : {"tcp://*:7400", "tcp://0.0.0.0:7400", "tcp://10.0.0.2:7400",
                                   "tcp://eth0:7400", "tcp://[::]:7400", "tcp://128.0.0.1:7400"}) {
    INFO(listen);
    auto config = agents(listen, false);
    REQUIRE_FALSE(config);
    CHECK(config.error().message.find("c.yaml: agents.curve:") == 0);
    CHECK(config.error().message.find(listen) != std::string::npos);
    CHECK(config.error().message.find("loopback") != std::string::npos);
    // With CURVE the same address is fine.
    CHECK(agents(listen, true));
  }
}

TEST_CASE("validate() applies the CURVE rule to a config built in code", "[config][curve]") {
  CoordinatorConfig config;
  config.agents.listen = "tcp://*:7400";
  config.agents.curve = false;
  CHECK_FALSE(validate(config));
  config.agents.curve = true;
  CHECK(validate(config));
  config.agents.listen = "tcp://127.0.0.1:*";
  config.agents.curve = false;
  CHECK(validate(config));
}

TEST_CASE("history: retention and interval are durations within their bounds", "[config][history]") {
  const auto parse = [](const std::string& history) {
    return parse_config("state_dir: /tmp/tide-x\nhistory:\n" + history, "c.yaml");
  };
  auto defaults = parse_config("state_dir: /tmp/tide-x\n", "c.yaml");
  REQUIRE(defaults);
  CHECK(defaults->history.retention_ms == 7 * 86'400'000LL);
  CHECK(defaults->history.interval_ms == 10'000);

  auto set = parse("  retention: 36h\n  interval: 250ms\n");
  REQUIRE(set);
  CHECK(set->history.retention_ms == 36 * 3'600'000LL);
  CHECK(set->history.interval_ms == 250);
  auto year = parse("  retention: 366d\n");
  REQUIRE(year);
  CHECK(year->history.retention_ms == 366 * 86'400'000LL);

  struct Bad {
    const char* yaml;
    const char* starts;
  };
  for (const Bad& bad : {Bad{"  retention: 7x\n", "c.yaml: history.retention: '7x' is not a duration"},
                         Bad{"  retention: 7\n", "c.yaml: history.retention: '7' is not a duration"},
                         Bad{"  retention: [1, 2]\n", "c.yaml: history.retention: expected a duration"},
                         Bad{"  retention: 30m\n", "c.yaml: history.retention: must be between 1h and 366d"},
                         Bad{"  retention: 400d\n", "c.yaml: history.retention: must be between 1h and 366d"},
                         Bad{"  interval: 50ms\n", "c.yaml: history.interval: must be between 100ms and 10s"},
                         Bad{"  interval: 1m\n", "c.yaml: history.interval: must be between 100ms and 10s"},
                         Bad{"  interval: soon\n", "c.yaml: history.interval: 'soon' is not a duration"},
                         Bad{"  retain: 7d\n", "c.yaml: history.retain: unknown key"}}) {
    INFO(bad.yaml);
    auto config = parse(bad.yaml);
    REQUIRE_FALSE(config);
    CHECK_THAT(config.error().message, Catch::StartsWith(bad.starts));
  }
}

TEST_CASE("history: a changed history section takes a restart", "[config][history]") {
  CoordinatorConfig running;
  CoordinatorConfig fresh = running;
  CHECK(changes_needing_restart(running, fresh).empty());
  fresh.history.retention_ms = 86'400'000;
  CHECK(changes_needing_restart(running, fresh) == std::vector<std::string>{"history"});
}
