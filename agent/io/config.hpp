// The agent's configuration: an optional YAML file (--config), overridden by
// environment variables, so a launcher can start tide-agent with env only.
// packaging/agent.yaml.example documents every key and its default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "agent/core/metrics.hpp"
#include "agent/core/probe_schedule.hpp"
#include "agent/core/readiness.hpp"

namespace tide::agent {

struct ProbeConfig {
  std::string name;
  protocol::ProbeKind kind = protocol::ProbeKind::Http;
  SourceRole role = SourceRole::Readiness;
  std::string url;      // http: http://host[:port]/path
  std::string address;  // tcp: host:port
  std::string command;  // exec: run with /bin/sh -c; exit 0 passes
  // Unset: a readiness probe takes readiness.period_ms and
  // readiness.startup_period_ms, a health check 1000 ms for both.
  std::optional<std::uint32_t> period_ms;          // start to start once it passed
  std::optional<std::uint32_t> startup_period_ms;  // start to start until it first passes
  std::uint32_t timeout_ms = 1000;
  std::uint32_t initial_delay_ms = 0;
  std::uint32_t success_threshold = 1;
  std::uint32_t failure_threshold = 3;
};

struct HookConfig {
  std::string command;  // /bin/sh -c
  std::uint32_t timeout_ms = 3'600'000;  // upper bound of HOOK_RUN's timeout_ms
};

// Defaults and bounds of readiness.period_ms and readiness.startup_period_ms
// (and their environment variables).
inline constexpr std::uint32_t kDefaultReadinessPeriodMs = 1000;
inline constexpr std::uint32_t kDefaultReadinessStartupPeriodMs = 50;
inline constexpr std::uint32_t kDefaultHealthPeriodMs = 1000;
inline constexpr std::uint32_t kMinReadinessPeriodMs = 10;
inline constexpr std::uint32_t kMaxReadinessPeriodMs = 60'000;

enum class ShutdownAction : std::uint8_t { Exit, Poweroff, None };

struct AgentConfig {
  std::string source = "(defaults)";  // the file the config came from

  // coordinator
  std::string coordinator_endpoint = "tcp://127.0.0.1:7400";
  std::string coordinator_public_key;  // Z85; empty = no CURVE (tests only)

  // instance
  std::string instance_id;   // default: the host name
  std::string enrollment_token;
  std::string group;
  std::string service_address;
  std::uint16_t service_port = 0;
  std::map<std::string, std::string> labels;

  std::filesystem::path state_dir = "/var/lib/tide-agent";
  std::string log_level = "info";

  // link
  std::uint32_t welcome_timeout_ms = 3000;
  std::uint32_t backoff_base_ms = 100;
  std::uint32_t backoff_max_ms = 5000;

  // readiness and health
  // Readiness probes run every readiness_startup_period_ms until they first
  // pass, so a booting instance enters rotation soon after it is ready, then
  // every readiness_period_ms.
  std::uint32_t readiness_period_ms = kDefaultReadinessPeriodMs;
  std::uint32_t readiness_startup_period_ms = kDefaultReadinessStartupPeriodMs;
  bool notify_readiness = false;   // READY=1 on the notify socket is required
  std::string notify_socket;       // unix datagram socket path; empty = none
  std::vector<ProbeConfig> probes; // readiness probes, then health checks

  // metrics
  bool metrics_include_loopback = false;
  MetricsScope metrics_scope = MetricsScope::Host;  // what `cpu` and `memory` describe
  std::string metrics_cgroup;      // cgroup v2 directory; empty = none

  // commands
  std::string drain_command;
  std::string undrain_command;
  std::uint32_t drain_command_timeout_ms = 30'000;
  std::string pre_stop_command;
  ShutdownAction shutdown_action = ShutdownAction::Exit;
  std::string poweroff_command = "systemctl poweroff";
  std::map<std::string, HookConfig> hooks;
};

// Names the file, the key and what is wrong.
struct ConfigError {
  std::string file;
  std::string key;
  std::string what;
  [[nodiscard]] std::string to_string() const;
};

// The schedule of one configured probe: its own periods, or its section's.
[[nodiscard]] ProbeTiming probe_timing(const AgentConfig& config, const ProbeConfig& probe);

using Environment = std::map<std::string, std::string>;

[[nodiscard]] Environment current_environment();

// path: the YAML file, or nullopt for defaults + environment only.
[[nodiscard]] tl::expected<AgentConfig, ConfigError> load_config(
    const std::optional<std::filesystem::path>& path, const Environment& env);

}  // namespace tide::agent
