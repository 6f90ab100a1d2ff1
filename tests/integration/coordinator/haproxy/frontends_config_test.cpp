// The coordinator's load_balancer.frontends configuration: parsing, the
// checks that name the key, and the mapping onto the HAProxy generator.
#include <catch2/catch.hpp>

#include <string>

#include "coordinator/io/server/config.hpp"

using namespace tide::coordinator;

namespace {

const std::string kShared = R"(
state_dir: /tmp/tide-x
load_balancer:
  backends:
    - name: business-servers
      slots: 8
    - name: session-servers
      slots: 4
  frontends:
    - name: mini_program
      bind_port: 18000
      default_backend: business-servers
      routes:
        - path_prefix: /session
          backend: session-servers
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a shared frontend in the coordinator config", "[config][frontends]") {
  auto config = parse_config(kShared, "c.yaml");
  REQUIRE(config);
  REQUIRE(config->load_balancer.frontends.size() == 1);
  const auto& fe = config->load_balancer.frontends[0];
  CHECK(fe.name == "mini_program");
  CHECK(fe.bind_address == "127.0.0.1");
  CHECK(fe.bind_port == 18000);
  CHECK(fe.default_backend == "business-servers");
  REQUIRE(fe.routes.size() == 1);
  CHECK(fe.routes[0].path_prefix == "/session");
  CHECK(fe.routes[0].backend == "session-servers");
  CHECK(config->load_balancer.backends[0].bind_port == 0);

  const auto specs = haproxy_frontends(config->load_balancer);
  REQUIRE(specs.size() == 1);
  CHECK(specs[0].name == "mini_program");
  CHECK(specs[0].bind_port == 18000);
  REQUIRE(specs[0].routes.size() == 1);
  CHECK(specs[0].routes[0].backend == "session-servers");
}

TEST_CASE("per-backend frontends still work without frontends", "[config][frontends]") {
  auto config = parse_config(R"(
load_balancer:
  backends:
    - name: web
      bind_port: 8080
)", "c.yaml");
  REQUIRE(config);
  CHECK(config->load_balancer.frontends.empty());
  CHECK(haproxy_frontends(config->load_balancer).empty());
}

TEST_CASE("bad shared frontends are refused with the file and the key", "[config][frontends]") {
  auto error_of = [](const std::string& yaml) {
    auto config = parse_config(yaml, "c.yaml");
    REQUIRE_FALSE(config);
    return config.error().message;
  };
  CHECK(error_of(replace(kShared, "backend: session-servers", "backend: sessions")) ==
        "c.yaml: load_balancer.frontends[0].routes[0].backend: unknown backend 'sessions' (not in load_balancer.backends)");
  CHECK(error_of(replace(kShared, "default_backend: business-servers", "default_backend: biz")) ==
        "c.yaml: load_balancer.frontends[0].default_backend: unknown backend 'biz' (not in load_balancer.backends)");
  CHECK(error_of(replace(kShared, "path_prefix: /session", "path_prefix: session")) ==
        "c.yaml: load_balancer.frontends[0].routes[0].path_prefix: must start with '/'");
  CHECK(error_of(replace(kShared, "path_prefix: /session", "path_prefx: /session")) ==
        "c.yaml: load_balancer.frontends[0].routes[0].path_prefx: unknown key");
  CHECK(error_of(replace(kShared, "      bind_port: 18000\n", "")) ==
        "c.yaml: load_balancer.frontends[0].bind_port: required (1..65535)");
  CHECK(error_of(replace(kShared, "name: mini_program", "name: fe_x")).find("reserved") != std::string::npos);
  // A backend with no port of its own that no frontend routes to is unreachable.
  CHECK(error_of(replace(kShared, "          backend: session-servers\n", "          backend: business-servers\n")) ==
        "c.yaml: load_balancer.backends[1].bind_port: required (1..65535) unless a load_balancer.frontends entry "
        "routes to 'session-servers'");
  // The shared port may not be a backend's port too.
  CHECK(error_of(replace(kShared, "      slots: 4\n", "      slots: 4\n      bind_port: 18000\n")) ==
        "c.yaml: load_balancer.frontends[0].bind_port: port used twice");
  CHECK(error_of(replace(kShared, "      routes:\n        - path_prefix: /session\n          backend: session-servers\n",
                         "      routes: /session\n")) == "c.yaml: load_balancer.frontends[0].routes: expected a list");
}
