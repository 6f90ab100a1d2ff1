// Launch configurations as the admin API reads and writes them: the agent
// settings, their bounds, and unknown keys refused.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "coordinator/io/json/json_model.hpp"

using namespace tide::coordinator;
using nlohmann::json;

namespace {

json lc_body() {
  return json{{"id", "web"}, {"command", "run-app"}, {"port", 8080}};
}

}  // namespace

TEST_CASE("launch configuration agent settings default and round-trip", "[json][lc]") {
  auto plain = launch_configuration_from_json(lc_body());
  REQUIRE(plain);
  CHECK(plain->agent.readiness_period_ms == 0);  // the agent's default
  CHECK(to_json(*plain)["agent"]["readiness_period_ms"] == 0);

  json body = lc_body();
  body["agent"] = {{"readiness_path", "/healthz"}, {"report_interval_ms", 500}, {"readiness_period_ms", 100}};
  auto config = launch_configuration_from_json(body);
  REQUIRE(config);
  CHECK(config->agent.readiness_path == "/healthz");
  CHECK(config->agent.report_interval_ms == 500);
  CHECK(config->agent.readiness_period_ms == 100);
  CHECK(validate(*config));

  // What the API shows can be sent back as the agent object of a new body.
  const json shown = to_json(*config);
  CHECK(shown["agent"] == body["agent"]);
  json again = lc_body();
  again["agent"] = shown["agent"];
  auto reparsed = launch_configuration_from_json(again);
  REQUIRE(reparsed);
  CHECK(reparsed->agent == config->agent);
}

TEST_CASE("launch configuration readiness_period_ms is 0 or 10..60000", "[json][lc]") {
  for (const std::uint32_t ok : {0u, 10u, 100u, 60'000u}) {
    json body = lc_body();
    body["agent"] = {{"readiness_period_ms", ok}};
    auto config = launch_configuration_from_json(body);
    INFO(ok);
    REQUIRE(config);
    CHECK(config->agent.readiness_period_ms == ok);
    CHECK(validate(*config));
  }
  for (const json& bad : {json(9), json(60'001), json(-1), json("100ms"), json(1.5)}) {
    json body = lc_body();
    body["agent"] = {{"readiness_period_ms", bad}};
    auto config = launch_configuration_from_json(body);
    INFO(bad.dump());
    REQUIRE_FALSE(config);
    CHECK(config.error().field == "agent.readiness_period_ms");
  }
  LaunchConfiguration direct;
  direct.id = "web";
  direct.agent.readiness_period_ms = 5;
  auto refused = validate(direct);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("readiness_period_ms"));
}

TEST_CASE("launch configuration agent object refuses unknown keys", "[json][lc]") {
  json body = lc_body();
  body["agent"] = {{"probe_period", 100}};
  auto config = launch_configuration_from_json(body);
  REQUIRE_FALSE(config);
  CHECK(config.error().field == "agent.probe_period");
  CHECK(config.error().message == "unknown field");
  // `readiness_period` is readiness_period_ms as a typed duration, so a
  // number there is refused as one.
  body["agent"] = {{"readiness_period", 100}};
  auto untyped = launch_configuration_from_json(body);
  REQUIRE_FALSE(untyped);
  CHECK(untyped.error().field == "agent.readiness_period");
  body["agent"] = {{"readiness_period", "250ms"}};
  auto typed = launch_configuration_from_json(body);
  REQUIRE(typed);
  CHECK(typed->agent.readiness_period_ms == 250);
}

TEST_CASE("launch configuration env_files take absolute paths and name the bad field", "[json][lc]") {
  json body = lc_body();
  body["env_files"] = {{"DB_PASSWORD", "/etc/tide/secrets/db"}};
  auto config = launch_configuration_from_json(body);
  REQUIRE(config);
  CHECK(config->env_files == std::map<std::string, std::string>{{"DB_PASSWORD", "/etc/tide/secrets/db"}});
  CHECK(validate(*config));
  CHECK(to_json(*config)["env_files"] == body["env_files"]);

  for (const json& bad : {json("relative/path"), json(""), json(std::string("/a\nb")), json(std::string("/a\0b", 4)),
                          json(3)}) {
    json refused_body = lc_body();
    refused_body["env_files"] = {{"DB_PASSWORD", bad}};
    auto refused = launch_configuration_from_json(refused_body);
    INFO(bad.dump());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().field == "env_files.DB_PASSWORD");
  }
  json both = lc_body();
  both["env"] = {{"DB_PASSWORD", "inline"}};
  both["env_files"] = {{"DB_PASSWORD", "/secret"}};
  auto refused = launch_configuration_from_json(both);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().field == "env_files.DB_PASSWORD");

  json not_object = lc_body();
  not_object["env_files"] = json::array({"/secret"});
  auto refused_list = launch_configuration_from_json(not_object);
  REQUIRE_FALSE(refused_list);
  CHECK(refused_list.error().field == "env_files");

  LaunchConfiguration direct;
  direct.id = "web";
  direct.env_files = {{"KEY", "key.txt"}};
  auto invalid = validate(direct);
  REQUIRE_FALSE(invalid);
  CHECK_THAT(invalid.error().message, Catch::Contains("env_files.KEY"));
}
