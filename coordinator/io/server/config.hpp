// tide-coordinator's configuration: a YAML file (--config), every key
// documented with its default in packaging/coordinator.yaml.example.
// Errors name the file, the key and what is wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/io/haproxy/config.hpp"

namespace tide::coordinator {

struct AgentLinkConfig {
  std::string listen = "tcp://127.0.0.1:7400";  // ROUTER bind endpoint
  std::string advertise;                        // endpoint agents are given; default: listen
  bool curve = true;                            // CURVE + ZAP on the agent link
  std::uint32_t report_interval_ms = 1000;      // told to agents in WELCOME
  std::uint32_t heartbeat_interval_ms = 1000;
  std::uint32_t liveness = 3;                   // missed intervals = agent lost
};

struct ApiConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 7401;
  std::string token;  // bearer token; empty = none (allowed only on loopback)
};

struct LocalProviderConfig {
  std::filesystem::path agent_path;  // default: tide-agent beside tide-coordinator
  std::string agent_log_level = "info";
  std::string address_prefix = "127.0.1.";  // instances get prefix + N, N = 1..254
};

struct ExecProviderConfig {
  std::string launch;
  std::string terminate;
  std::string list;
  std::string describe;
  std::uint32_t timeout_ms = 60'000;
};

struct ProviderConfig {
  std::string type = "local";  // local | exec
  LocalProviderConfig local;
  ExecProviderConfig exec;
  // How often the provider's list is compared with the fleet: what tide
  // believes alive but the provider no longer runs has vanished. 0: never
  // (the local provider also reports its instances' exits at once).
  std::uint32_t check_interval_ms = 5'000;
};

struct LbBackendConfig {
  std::string name;                     // HAProxy backend (a group's load_balancer.backend)
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;          // its own frontend's port; 0 = only through load_balancer.frontends
  std::uint32_t slots = 64;             // pre-declared server-template slots
};

// A path-prefix route of a shared frontend.
struct LbRouteConfig {
  std::string path_prefix;  // "/session": requests whose path begins with it
  std::string backend;      // go to this load_balancer.backends name
};

// One HAProxy frontend in front of several backends (the brief's single load
// balancer for the business and the session clusters).
struct LbFrontendConfig {
  std::string name;
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;
  std::string default_backend;        // unmatched requests; empty: 503
  std::vector<LbRouteConfig> routes;  // first match wins
};

struct LoadBalancerConfig {
  std::string type = "haproxy";         // haproxy | none
  bool embedded = true;                 // true: start and supervise our own HAProxy
  std::string haproxy_path = "haproxy";
  std::string socket;                   // runtime API socket; default <state_dir>/haproxy.sock
  std::vector<LbBackendConfig> backends;
  std::vector<LbFrontendConfig> frontends;  // optional shared frontends
  std::uint32_t reconcile_interval_ms = 5000;  // compare wanted with `show servers state`
  // Embedded only. false: stopping the coordinator stops its HAProxy. true:
  // HAProxy keeps serving while the coordinator is down, and the next start
  // adopts it (as after a crash), so a restart or upgrade drops no traffic.
  bool keep_running_on_stop = false;
};

// Prometheus as a metric source (docs/policies.md, "Prometheus"): policies
// with a `query` read the value of that PromQL instant query, polled every
// interval_ms over Prometheus's HTTP API.
struct PrometheusConfig {
  std::string url;           // e.g. http://127.0.0.1:9090; empty: no Prometheus, query policies refused
  std::string bearer_token;  // sent as "Authorization: Bearer ..."; from bearer_token_file
  std::uint32_t timeout_ms = 2'000;   // one query, connect included
  std::uint32_t interval_ms = 1'000;  // how often each query is asked
};

struct CoordinatorConfig {
  std::string source = "(defaults)";
  std::filesystem::path state_dir = "/var/lib/tide";  // SQLite, keys, provider state
  std::string log_level = "info";
  std::uint32_t tick_interval_ms = 250;  // health, reconcile and timers
  AgentLinkConfig agents;
  ApiConfig api;
  ProviderConfig provider;
  LoadBalancerConfig load_balancer;
  PrometheusConfig prometheus;

  [[nodiscard]] std::filesystem::path database_path() const { return state_dir / "tide.db"; }
  [[nodiscard]] std::filesystem::path server_key_path() const { return state_dir / "coordinator.key"; }
  [[nodiscard]] std::string haproxy_socket() const {
    return load_balancer.socket.empty() ? (state_dir / "haproxy.sock").string() : load_balancer.socket;
  }
};

struct ConfigError {
  std::string message;  // "<file>: <key>: <what is wrong>"
};

// Loads a YAML file; unknown keys are errors (a typo must not be ignored).
[[nodiscard]] tl::expected<CoordinatorConfig, ConfigError> load_config(const std::filesystem::path& file);
// Parses YAML text; `source` names it in errors.
[[nodiscard]] tl::expected<CoordinatorConfig, ConfigError> parse_config(const std::string& yaml,
                                                                        const std::string& source);
// Checks values that depend on each other.
[[nodiscard]] tl::expected<void, ConfigError> validate(const CoordinatorConfig& config);

// The shared frontends as the HAProxy config generator takes them.
[[nodiscard]] std::vector<haproxy::FrontendSpec> haproxy_frontends(const LoadBalancerConfig& config);

}  // namespace tide::coordinator
