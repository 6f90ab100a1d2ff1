#include "coordinator/tidectl/launch_config.hpp"

#include "coordinator/tidectl/table.hpp"

namespace tide::tidectl {
namespace {

using nlohmann::json;

tl::expected<void, std::string> add_pairs(json& object, const std::vector<std::string>& pairs, const std::string& flag) {
  for (const auto& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) return tl::make_unexpected(flag + ": expected KEY=VALUE, got '" + pair + "'");
    object[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return {};
}

// "env.LOG_LEVEL: debug -> info", one line per leaf that differs.
void diff(const json& before, const json& after, const std::string& path, std::vector<std::string>& out) {
  if (before.is_object() && after.is_object()) {
    for (const auto& [key, value] : after.items()) {
      diff(before.contains(key) ? before[key] : json(), value, path.empty() ? key : path + "." + key, out);
    }
    for (const auto& [key, value] : before.items()) {
      if (!after.contains(key)) out.push_back((path.empty() ? key : path + "." + key) + ": " + to_text(value) + " -> (removed)");
    }
    return;
  }
  if (before != after) {
    out.push_back(path + ": " + (before.is_null() ? std::string("(none)") : to_text(before)) + " -> " + to_text(after));
  }
}

}  // namespace

tl::expected<LaunchConfigPlan, std::string> plan_launch_config(const json& previous, const LaunchConfigFlags& flags) {
  const bool first = previous.is_null() || flags.fresh;
  json body = json::object();
  if (!first) {
    // What a version is made of; id, version and created_ms are the store's.
    for (const char* key : {"command", "port", "env", "env_files", "agent", "hourly_price"}) {
      if (previous.contains(key)) body[key] = previous[key];
    }
  }
  body["id"] = flags.name;
  if (flags.command) body["command"] = *flags.command;
  if (flags.port) body["port"] = *flags.port;
  if (!body.contains("command")) return tl::make_unexpected("--command: required for the first version of '" + flags.name + "'");
  if (!body.contains("port")) return tl::make_unexpected("--port: required for the first version of '" + flags.name + "'");
  json env = body.value("env", json::object());
  json env_files = body.value("env_files", json::object());
  for (const auto& key : flags.unset_env) {
    if (!env.contains(key) && !env_files.contains(key)) {
      return tl::make_unexpected("--unset-env: '" + key + "' is not set in version " +
                                 std::to_string(previous.is_object() ? previous.value("version", 0) : 0));
    }
    env.erase(key);
    env_files.erase(key);
  }
  if (auto ok = add_pairs(env, flags.env, "--env"); !ok) return tl::make_unexpected(ok.error());
  if (auto ok = add_pairs(env_files, flags.env_files, "--env-file"); !ok) return tl::make_unexpected(ok.error());
  // A key moves between env and env_files when given as the other kind.
  for (const auto& pair : flags.env) env_files.erase(pair.substr(0, pair.find('=')));
  for (const auto& pair : flags.env_files) env.erase(pair.substr(0, pair.find('=')));
  body["env"] = env;
  body["env_files"] = env_files;
  json agent = body.value("agent", json::object());
  if (flags.readiness_path) agent["readiness_path"] = *flags.readiness_path;
  if (flags.readiness_period_ms) agent["readiness_period_ms"] = *flags.readiness_period_ms;
  if (!agent.contains("readiness_path")) agent["readiness_path"] = "/ready";
  body["agent"] = agent;
  if (flags.hourly_price) body["hourly_price"] = *flags.hourly_price;
  if (!body.contains("hourly_price")) body["hourly_price"] = 0.0;

  LaunchConfigPlan plan;
  if (!previous.is_null()) {
    json before = json::object();
    for (const auto& [key, value] : body.items()) {
      if (previous.contains(key)) before[key] = previous[key];
    }
    diff(before, body, "", plan.changes);
    plan.unchanged = plan.changes.empty();
  }
  plan.body = std::move(body);
  return plan;
}

}  // namespace tide::tidectl
