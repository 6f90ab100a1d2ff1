#include "coordinator/io/json/json_model.hpp"

#include <limits>

#include "coordinator/io/json/fields.hpp"

namespace tide::coordinator {

using nlohmann::json;

json to_json(const LaunchConfiguration& config) {
  return json{{"id", config.id},
              {"version", config.version},
              {"command", config.command},
              {"port", config.port},
              {"env", config.env},
              {"env_files", config.env_files},
              {"agent", {{"readiness_path", config.agent.readiness_path},
                         {"report_interval_ms", config.agent.report_interval_ms},
                         {"readiness_period_ms", config.agent.readiness_period_ms}}},
              {"hourly_price", config.hourly_price},
              {"created_ms", config.created_ms}};
}

json to_json(const ScalingGroup& group) {
  return json{{"name", group.name},
              {"min", group.min},
              {"max", group.max},
              {"desired", group.desired},
              {"launch_configuration", group.launch_configuration_id},
              {"launch_configuration_version", group.launch_configuration_version},
              {"termination_policy", to_string(group.termination_policy)},
              {"load_balancer", {{"backend", group.lb.backend}, {"port", group.lb.port}}},
              {"health_check_grace_period_ms", group.health_check_grace_period_ms},
              {"default_cooldown_ms", group.default_cooldown_ms},
              {"boot_timeout_ms", group.boot_timeout_ms},
              {"drain_timeout_ms", group.drain_timeout_ms},
              {"warmup_ms", group.warmup_ms},
              {"retry", {{"immediate_retries", group.retry.immediate_retries},
                         {"initial_backoff_ms", group.retry.initial_backoff_ms},
                         {"multiplier", group.retry.multiplier},
                         {"max_backoff_ms", group.retry.max_backoff_ms}}},
              {"fail_static_share", group.fail_static_share},
              {"replacement_rate", group.replacement_rate},
              {"liveness_window_ms", group.liveness_window_ms},
              {"enabled", group.enabled},
              {"created_ms", group.created_ms},
              {"updated_ms", group.updated_ms}};
}

json to_json(const Instance& instance) {
  json ready = nullptr;
  if (instance.runtime.ready) ready = *instance.runtime.ready;
  return json{{"id", instance.id},
              {"group", instance.group},
              {"origin", to_string(instance.origin)},
              {"state", to_string(instance.state)},
              {"protected_from_scale_in", instance.protected_from_scale_in},
              {"health", to_string(instance.health)},
              {"health_reason", instance.health_reason},
              {"ready", ready},
              {"in_lb", instance.runtime.in_lb},
              {"agent_connected", instance.runtime.agent_connected},
              {"provider_id", instance.provider_id},
              {"address", instance.address},
              {"port", instance.port},
              {"launch_configuration", instance.launch_configuration_id},
              {"launch_configuration_version", instance.launch_configuration_version},
              {"exit_reason", to_string(instance.exit_reason)},
              {"created_ms", instance.created_ms},
              {"launched_ms", instance.launched_ms},
              {"state_since_ms", instance.state_since_ms}};
}

json to_json(const Activity& activity) {
  json instances = json::array();
  for (const auto& item : activity.instances) {
    instances.push_back({{"instance_id", item.instance_id}, {"ok", item.ok}, {"message", item.message}});
  }
  json end = nullptr;
  if (activity.end_ms) end = *activity.end_ms;
  return json{{"id", activity.id},       {"group", activity.group},
              {"type", to_string(activity.type)}, {"cause", activity.cause},
              {"status", to_string(activity.status)}, {"start_ms", activity.start_ms},
              {"end_ms", end},           {"instances", instances}};
}

namespace {

constexpr std::int64_t kDayMs = 86'400'000;

tl::expected<void, JsonError> read_group_fields(Fields& f, ScalingGroup& g) {
  TIDE_JSON_TRY(f.integer<std::uint32_t>("min", g.min, 0, 10'000));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("max", g.max, 0, 10'000));
  TIDE_JSON_TRY(f.integer<std::uint32_t>("desired", g.desired, 0, 10'000));
  TIDE_JSON_TRY(f.text("launch_configuration", g.launch_configuration_id, 128));
  if (f.has("termination_policy")) {
    std::string policy;
    TIDE_JSON_TRY(f.text("termination_policy", policy));
    const auto parsed = from_string<TerminationPolicy>(policy);
    if (!parsed) return f.fail("termination_policy", "must be oldest_instance, newest_instance or oldest_launch_configuration");
    g.termination_policy = *parsed;
  }
  if (f.has("load_balancer")) {
    const json& lb = f.at("load_balancer");
    if (!lb.is_object()) return f.fail("load_balancer", "must be an object {backend, port}");
    Fields lbf(lb, "load_balancer.");
    TIDE_JSON_TRY(lbf.text("backend", g.lb.backend, 128));
    TIDE_JSON_TRY(lbf.integer<std::uint16_t>("port", g.lb.port, 0, 65535));
    TIDE_JSON_TRY(lbf.no_unknown_keys());
  }
  TIDE_JSON_TRY(f.duration<std::int64_t>("health_check_grace_period", g.health_check_grace_period_ms, 0, kDayMs));
  TIDE_JSON_TRY(f.duration<std::int64_t>("default_cooldown", g.default_cooldown_ms, 0, kDayMs));
  TIDE_JSON_TRY(f.duration<std::int64_t>("boot_timeout", g.boot_timeout_ms, 1000, kDayMs));
  TIDE_JSON_TRY(f.duration<std::int64_t>("drain_timeout", g.drain_timeout_ms, 0, kDayMs));
  TIDE_JSON_TRY(f.duration<std::int64_t>("warmup", g.warmup_ms, 0, kDayMs));
  TIDE_JSON_TRY(f.duration<std::int64_t>("liveness_window", g.liveness_window_ms, 1000, kDayMs));
  TIDE_JSON_TRY(f.number("fail_static_share", g.fail_static_share, 0.0, 1.0));
  TIDE_JSON_TRY(f.number("replacement_rate", g.replacement_rate, 0.0, 1.0));
  TIDE_JSON_TRY(f.boolean("enabled", g.enabled));
  if (f.has("retry")) {
    const json& retry = f.at("retry");
    if (!retry.is_object()) return f.fail("retry", "must be an object");
    Fields rf(retry, "retry.");
    TIDE_JSON_TRY(rf.integer<std::uint32_t>("immediate_retries", g.retry.immediate_retries, 0, 100));
    TIDE_JSON_TRY(rf.duration<std::int64_t>("initial_backoff", g.retry.initial_backoff_ms, 0, kDayMs));
    TIDE_JSON_TRY(rf.number("multiplier", g.retry.multiplier, 1.0, 100.0));
    TIDE_JSON_TRY(rf.duration<std::int64_t>("max_backoff", g.retry.max_backoff_ms, 0, kDayMs));
    TIDE_JSON_TRY(rf.no_unknown_keys());
  }
  return {};
}

}  // namespace

tl::expected<LaunchConfiguration, JsonError> launch_configuration_from_json(const json& body) {
  if (!body.is_object()) return tl::make_unexpected(JsonError{"", "the body must be a JSON object"});
  Fields f(body);
  LaunchConfiguration config;
  TIDE_JSON_TRY(f.text("id", config.id, 128));
  if (config.id.empty()) return f.fail("id", "required");
  TIDE_JSON_TRY(f.text("command", config.command, 4096));
  if (config.command.empty()) return f.fail("command", "required");
  TIDE_JSON_TRY(f.integer<std::uint16_t>("port", config.port, 1, 65535));
  if (!f.has("port")) return f.fail("port", "required");
  if (f.has("env")) {
    const json& env = f.at("env");
    if (!env.is_object()) return f.fail("env", "must be an object of strings");
    for (const auto& [key, value] : env.items()) {
      if (!value.is_string()) return f.fail("env." + key, "must be a string");
      config.env[key] = value.get<std::string>();
    }
  }
  if (f.has("env_files")) {
    const json& env_files = f.at("env_files");
    if (!env_files.is_object()) return f.fail("env_files", "must be an object of absolute paths");
    for (const auto& [key, value] : env_files.items()) {
      if (!value.is_string()) return f.fail("env_files." + key, "must be a string");
      const auto path = value.get<std::string>();
      if (auto problem = env_file_problem(key, path); !problem.empty()) return f.fail("env_files." + key, problem);
      if (config.env.count(key) != 0) return f.fail("env_files." + key, "is also set in env");
      config.env_files[key] = path;
    }
  }
  if (f.has("agent")) {
    const json& agent = f.at("agent");
    if (!agent.is_object()) return f.fail("agent", "must be an object");
    Fields af(agent, "agent.");
    TIDE_JSON_TRY(af.text("readiness_path", config.agent.readiness_path, 1024));
    TIDE_JSON_TRY(af.duration<std::uint32_t>("report_interval", config.agent.report_interval_ms, 100, 60'000));
    TIDE_JSON_TRY(af.duration<std::uint32_t>("readiness_period", config.agent.readiness_period_ms, 0,
                                            kMaxReadinessPeriodMs));
    TIDE_JSON_TRY(af.no_unknown_keys());
    if (config.agent.readiness_period_ms != 0 && config.agent.readiness_period_ms < kMinReadinessPeriodMs) {
      return af.fail(af.duration_key("readiness_period"), "must be 0 (the agent's default) or 10ms..60s");
    }
    if (config.agent.readiness_path.empty() || config.agent.readiness_path[0] != '/') {
      return af.fail("readiness_path", "must start with '/'");
    }
  }
  TIDE_JSON_TRY(f.number("hourly_price", config.hourly_price, 0.0, 1e9));
  TIDE_JSON_TRY(f.no_unknown_keys());
  return config;
}

tl::expected<ScalingGroup, JsonError> group_from_json(const json& body) {
  if (!body.is_object()) return tl::make_unexpected(JsonError{"", "the body must be a JSON object"});
  Fields f(body);
  ScalingGroup group;
  TIDE_JSON_TRY(f.text("name", group.name, 128));
  if (group.name.empty()) return f.fail("name", "required");
  if (!f.has("launch_configuration")) return f.fail("launch_configuration", "required");
  if (!f.has("min")) return f.fail("min", "required");
  if (!f.has("max")) return f.fail("max", "required");
  const bool has_desired = f.has("desired");
  TIDE_JSON_TRY(read_group_fields(f, group));
  if (!has_desired) group.desired = group.min;
  TIDE_JSON_TRY(f.no_unknown_keys());
  return group;
}

tl::expected<ScalingGroup, JsonError> patch_group(ScalingGroup group, const json& body) {
  if (!body.is_object()) return tl::make_unexpected(JsonError{"", "the body must be a JSON object"});
  Fields f(body);
  if (f.has("name")) return f.fail("name", "cannot be changed");
  TIDE_JSON_TRY(read_group_fields(f, group));
  TIDE_JSON_TRY(f.no_unknown_keys());
  return group;
}

}  // namespace tide::coordinator
