// tide-coordinator's configuration: a YAML file (--config), every key
// documented with its default in packaging/coordinator.yaml.example.
// Errors name the file, the key and what is wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "coordinator/core/history.hpp"
#include "coordinator/io/haproxy/config.hpp"

namespace tide::coordinator {

struct AgentLinkConfig {
  std::string listen = "tcp://127.0.0.1:7400";  // ROUTER bind endpoint
  std::string advertise;                        // endpoint agents are given; default: listen
  bool curve = true;                            // CURVE + ZAP on the agent link
  std::uint32_t report_interval_ms = 1000;      // told to agents in WELCOME
  std::uint32_t heartbeat_interval_ms = 1000;
  std::uint32_t liveness = 3;                   // missed intervals = agent lost
  bool operator==(const AgentLinkConfig&) const = default;
};

struct ApiConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 7401;
  std::string token;  // bearer token; empty = none (allowed only on loopback)
  // The web console at /console/ on the same listener and token.
  bool console = true;
  // Its static files; empty: <tide-coordinator's dir>/../share/tide/console.
  std::filesystem::path console_dir;
  bool operator==(const ApiConfig&) const = default;
};

struct LocalProviderConfig {
  std::filesystem::path agent_path;  // default: tide-agent beside tide-coordinator
  std::string agent_log_level = "info";
  std::string address_prefix = "127.0.1.";  // instances get prefix + N, N = 1..254
  bool operator==(const LocalProviderConfig&) const = default;
};

struct ExecProviderConfig {
  std::string launch;
  std::string terminate;
  std::string list;
  std::string describe;
  std::uint32_t timeout_ms = 60'000;
  bool operator==(const ExecProviderConfig&) const = default;
};

struct ProviderConfig {
  std::string type = "local";  // local | exec
  LocalProviderConfig local;
  ExecProviderConfig exec;
  // How often the provider's list is compared with the fleet: what tide
  // believes alive but the provider no longer runs has vanished. 0: never
  // (the local provider also reports its instances' exits at once).
  std::uint32_t check_interval_ms = 5'000;
  bool operator==(const ProviderConfig&) const = default;
};

struct LbBackendConfig {
  std::string name;                     // HAProxy backend (a group's load_balancer.backend)
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;          // its own frontend's port; 0 = only through load_balancer.frontends
  std::uint32_t slots = 64;             // pre-declared server-template slots
  // Time-outs (`timeout_server: 30s` or `timeout_server_ms: 30000`); 0: HAProxy's defaults from tide.
  std::uint32_t timeout_server_ms = 0;
  std::uint32_t timeout_connect_ms = 0;
  std::uint32_t timeout_queue_ms = 0;
  bool operator==(const LbBackendConfig&) const = default;
};

// A TLS certificate of a frontend: `cert` holds the chain (leaf first) and the
// private key, unless the key is in its own file `key`.
struct LbCertificateConfig {
  std::string cert;
  std::string key;
  bool operator==(const LbCertificateConfig&) const = default;
};

// TLS termination on a frontend's bind_port.
struct LbTlsConfig {
  std::vector<LbCertificateConfig> certificates{};  // picked by SNI; the first when no name matches
  bool http2 = true;                 // ALPN h2,http/1.1 (false: http/1.1 only)
  std::uint16_t redirect_port = 0;   // plain HTTP here answers with a redirect to https; 0 = none
  std::uint16_t redirect_code = 308;
  // Watch the certificate files (every watch_interval_ms) and load a changed
  // one into HAProxy without a reload; false: only on SIGHUP.
  bool watch = true;
  std::uint32_t watch_interval_ms = 5'000;
  bool operator==(const LbTlsConfig&) const = default;
};

// A path-prefix route of a shared frontend.
struct LbRouteConfig {
  std::string path_prefix;  // "/session": requests whose path begins with it
  std::string backend;      // go to this load_balancer.backends name
  bool operator==(const LbRouteConfig&) const = default;
};

// One HAProxy frontend in front of several backends (the brief's single load
// balancer for the business and the session clusters).
struct LbFrontendConfig {
  std::string name;
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;
  std::string default_backend;        // unmatched requests; empty: 503
  std::vector<LbRouteConfig> routes;  // first match wins
  LbTlsConfig tls{};                  // no certificates: plain HTTP
  bool forwarded_for = false;         // X-Forwarded-For and X-Forwarded-Proto to the backends
  std::uint32_t timeout_client_ms = 0;        // 0: tide's default
  std::uint32_t timeout_http_request_ms = 0;  // 0: tide's default
  // HAProxy's access log of this frontend (HTTP log format): "" none, "log"
  // the coordinator's log (lines marked "haproxy access"), else a file path.
  std::string access_log{};
  bool operator==(const LbFrontendConfig&) const = default;
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
  bool operator==(const PrometheusConfig&) const = default;
};

// Per-group history (docs/api.md, "History"): one sample per group every
// interval_ms, kept retention_ms in the store.
struct HistoryConfig {
  std::int64_t retention_ms = kDefaultHistoryRetentionMs;  // `retention: 7d`; 1 h .. 366 d
  // Not in the example file: tests sample faster. 100 ms .. 10 s, so that
  // every 10-s bucket of a chart has a sample.
  std::uint32_t interval_ms = static_cast<std::uint32_t>(kHistoryIntervalMs);
  bool operator==(const HistoryConfig&) const = default;
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
  HistoryConfig history;

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

// The shared frontends as the HAProxy config generator takes them. TLS
// frontends load the PEM files tide writes under `tls_dir`
// (certificate_file); access logs go to the unix sockets under `state_dir`
// (access_log_socket).
[[nodiscard]] std::vector<haproxy::FrontendSpec> haproxy_frontends(const LoadBalancerConfig& config,
                                                                   const std::filesystem::path& state_dir = {});
// The backends as the generator takes them.
[[nodiscard]] std::vector<haproxy::BackendSpec> haproxy_backends(const LoadBalancerConfig& config);
// Where tide writes frontend `frontend`'s certificate `index` for HAProxy.
[[nodiscard]] std::filesystem::path certificate_file(const std::filesystem::path& state_dir,
                                                     const std::string& frontend, std::size_t index);
// The unix datagram socket on which the coordinator takes a frontend's access log.
[[nodiscard]] std::filesystem::path access_log_socket(const std::filesystem::path& state_dir,
                                                      const std::string& frontend);
// "30s", "500ms", "5m", "1h30m" (core/duration.hpp) -> milliseconds, 1 ms..24 h;
// the error says what is wrong.
[[nodiscard]] tl::expected<std::uint32_t, std::string> parse_duration_ms(const std::string& text);
// What a configuration re-read on SIGHUP changes that only a restart applies:
// one entry per key ("api.listen_port", "load_balancer.backends"); empty: all
// of it can be applied to the running coordinator.
[[nodiscard]] std::vector<std::string> changes_needing_restart(const CoordinatorConfig& running,
                                                               const CoordinatorConfig& fresh);

}  // namespace tide::coordinator
