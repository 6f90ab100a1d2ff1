// tide-agent: reports readiness, health and load of this server to the tide
// coordinator (DESIGN.md, "Agent"). Everything happens on one libuv loop.
#include <malloc.h>
#include <uv.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "agent/io/agent.hpp"
#include "agent/io/config.hpp"
#include "common/logging/logging.hpp"

int main(int argc, char** argv) {
  // One malloc arena: libzmq's I/O and reaper threads would otherwise each
  // get their own, and the agent's footprint target is tight (RSS <= 8 MB).
  mallopt(M_ARENA_MAX, 1);
  CLI::App app{"tide-agent: reports readiness, health and load to the tide coordinator"};
  std::string config_path;
  std::string log_level;
  bool check_only = false;
  bool version = false;
  app.add_option("--config", config_path, "YAML configuration file (optional; environment TIDE_* overrides it)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off (default: config)");
  app.add_flag("--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::printf("tide-agent %s (protocol %u.%u)\n", std::string(tide::agent::kAgentVersion).c_str(),
                tide::protocol::kVersionMajor, tide::protocol::kVersionMinor);
    return 0;
  }

  // stderr, with a time and level on every line (priority prefixes under
  // journald): docs/packaging.md, "Logs". The configured level follows.
  tide::logging::setup(spdlog::level::info);

  std::optional<std::filesystem::path> path;
  if (!config_path.empty()) path = config_path;
  auto config = tide::agent::load_config(path, tide::agent::current_environment());
  if (!config) {
    std::fprintf(stderr, "tide-agent: config error: %s\n", config.error().to_string().c_str());
    return 2;
  }
  if (!log_level.empty()) config->log_level = log_level;
  const auto level = spdlog::level::from_str(config->log_level);
  if (level == spdlog::level::off && config->log_level != "off") {
    std::fprintf(stderr, "tide-agent: --log-level: unknown level '%s'\n", config->log_level.c_str());
    return 2;
  }
  spdlog::set_level(level);
  if (check_only) {
    std::printf("%s: configuration OK (instance %s, coordinator %s, %zu probes)\n", config->source.c_str(),
                config->instance_id.c_str(), config->coordinator_endpoint.c_str(), config->probes.size());
    return 0;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    tide::agent::Agent agent(&loop, std::move(*config));
    if (auto started = agent.start(); !started) {
      spdlog::critical("cannot start: {}", started.error());
      agent.stop("start failed");
      rc = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (rc == 0) rc = agent.exit_code();
  }
  // The agent's destructor closes what is left; let those handles finish.
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}
