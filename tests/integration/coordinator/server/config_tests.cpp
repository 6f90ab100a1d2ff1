// The coordinator's agents section: CURVE may be off only where nothing but
// this machine can reach the agent link (protocol/SPEC.md 10.4).
#include <string>

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
