// tidectl lc create: a launch configuration's next version starts from the
// previous one. Only the flags given change it (the hourly price, the
// environment and the agent settings stay as they were), and tidectl says
// what changed. `--fresh` starts from nothing, as the first version does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace tide::tidectl {

// What the user typed; unset = not given.
struct LaunchConfigFlags {
  std::string name;
  std::optional<std::string> command;
  std::optional<int> port;
  std::vector<std::string> env;        // KEY=VALUE, added or replaced
  std::vector<std::string> env_files;  // KEY=/path, added or replaced
  std::vector<std::string> unset_env;  // KEY: removed from env and env_files
  std::optional<std::string> readiness_path;
  std::optional<std::int64_t> readiness_period_ms;
  std::optional<double> hourly_price;
  bool fresh = false;
};

struct LaunchConfigPlan {
  nlohmann::json body;               // POST /v1/launch-configurations
  std::vector<std::string> changes;  // "port: 8080 -> 8081"; empty for a first version
  bool unchanged = false;            // the flags change nothing: no new version
};

// `previous` is the current version's JSON (GET /v1/launch-configurations/{id})
// or null for a first version. Fails naming the flag (`--command` is needed
// for a first version, KEY=VALUE pairs must have a key).
[[nodiscard]] tl::expected<LaunchConfigPlan, std::string> plan_launch_config(const nlohmann::json& previous,
                                                                            const LaunchConfigFlags& flags);

}  // namespace tide::tidectl
