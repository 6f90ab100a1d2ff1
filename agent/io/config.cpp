#include "agent/io/config.hpp"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "protocol/messages.hpp"

extern char** environ;

namespace tide::agent {
namespace {

using Result = tl::expected<void, ConfigError>;

struct Ctx {
  std::string file;
  ConfigError error(const std::string& key, const YAML::Node& node, std::string what) const {
    std::string where = file;
    if (node.IsDefined() && node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
    return ConfigError{where, key, std::move(what)};
  }
};

Result check_keys(const Ctx& ctx, const std::string& prefix, const YAML::Node& node,
                  const std::set<std::string>& allowed) {
  if (!node.IsMap()) return tl::make_unexpected(ctx.error(prefix, node, "must be a mapping"));
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (allowed.count(key) == 0) {
      return tl::make_unexpected(ctx.error(prefix.empty() ? key : prefix + "." + key, kv.first, "unknown key"));
    }
  }
  return {};
}

Result get_string(const Ctx& ctx, const YAML::Node& parent, const std::string& name,
                  const std::string& key, std::string& out) {
  const auto node = parent[name];
  if (!node.IsDefined() || node.IsNull()) return {};
  if (!node.IsScalar()) return tl::make_unexpected(ctx.error(key, node, "must be a string"));
  out = node.as<std::string>();
  return {};
}

template <typename T>
Result parse_uint_text(const Ctx& ctx, const YAML::Node& node, const std::string& key,
                       const std::string& text, T& out, std::uint64_t min, std::uint64_t max) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v < min || v > max) {
    return tl::make_unexpected(ctx.error(key, node,
        "must be an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got '" + text + "'"));
  }
  out = static_cast<T>(v);
  return {};
}

template <typename T>
Result get_uint(const Ctx& ctx, const YAML::Node& parent, const std::string& name,
                const std::string& key, T& out, std::uint64_t min,
                std::uint64_t max = std::numeric_limits<T>::max()) {
  const auto node = parent[name];
  if (!node.IsDefined() || node.IsNull()) return {};
  if (!node.IsScalar()) return tl::make_unexpected(ctx.error(key, node, "must be an integer"));
  return parse_uint_text(ctx, node, key, node.Scalar(), out, min, max);
}

template <typename T>
Result get_optional_uint(const Ctx& ctx, const YAML::Node& parent, const std::string& name,
                         const std::string& key, std::optional<T>& out, std::uint64_t min,
                         std::uint64_t max) {
  const auto node = parent[name];
  if (!node.IsDefined() || node.IsNull()) return {};
  T value{};
  if (auto r = get_uint(ctx, parent, name, key, value, min, max); !r) return r;
  out = value;
  return {};
}

Result get_bool(const Ctx& ctx, const YAML::Node& parent, const std::string& name,
                const std::string& key, bool& out) {
  const auto node = parent[name];
  if (!node.IsDefined() || node.IsNull()) return {};
  const auto& s = node.IsScalar() ? node.Scalar() : std::string();
  if (s == "true" || s == "yes" || s == "on") out = true;
  else if (s == "false" || s == "no" || s == "off") out = false;
  else return tl::make_unexpected(ctx.error(key, node, "must be true or false, got '" + s + "'"));
  return {};
}

tl::expected<std::string, std::string> read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return tl::make_unexpected("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > 64 * 1024) return tl::make_unexpected(path + " is larger than 64 KiB");
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

#define TRY(expr)                                         \
  do {                                                    \
    if (auto _r = (expr); !_r) return tl::make_unexpected(_r.error()); \
  } while (0)

Result parse_probe(const Ctx& ctx, const YAML::Node& node, const std::string& key, SourceRole role,
                   ProbeConfig& p) {
  TRY(check_keys(ctx, key, node, {"name", "type", "url", "address", "command", "period_ms",
                                  "startup_period_ms", "timeout_ms", "initial_delay_ms",
                                  "success_threshold", "failure_threshold"}));
  p.role = role;
  std::string type;
  TRY(get_string(ctx, node, "type", key + ".type", type));
  if (type == "http") p.kind = protocol::ProbeKind::Http;
  else if (type == "tcp") p.kind = protocol::ProbeKind::Tcp;
  else if (type == "exec") p.kind = protocol::ProbeKind::Exec;
  else return tl::make_unexpected(ctx.error(key + ".type", node["type"], "must be http, tcp or exec, got '" + type + "'"));
  TRY(get_string(ctx, node, "name", key + ".name", p.name));
  if (p.name.empty()) p.name = type;
  if (!protocol::is_valid_id(p.name)) {
    return tl::make_unexpected(ctx.error(key + ".name", node["name"], "must be 1..128 characters of [A-Za-z0-9._:-]"));
  }
  TRY(get_string(ctx, node, "url", key + ".url", p.url));
  TRY(get_string(ctx, node, "address", key + ".address", p.address));
  TRY(get_string(ctx, node, "command", key + ".command", p.command));
  TRY(get_optional_uint(ctx, node, "period_ms", key + ".period_ms", p.period_ms, 10, 3'600'000));
  TRY(get_optional_uint(ctx, node, "startup_period_ms", key + ".startup_period_ms", p.startup_period_ms,
                        kMinReadinessPeriodMs, kMaxReadinessPeriodMs));
  TRY(get_uint(ctx, node, "timeout_ms", key + ".timeout_ms", p.timeout_ms, 1, 3'600'000));
  TRY(get_uint(ctx, node, "initial_delay_ms", key + ".initial_delay_ms", p.initial_delay_ms, 0, 3'600'000));
  TRY(get_uint(ctx, node, "success_threshold", key + ".success_threshold", p.success_threshold, 1, 1000));
  TRY(get_uint(ctx, node, "failure_threshold", key + ".failure_threshold", p.failure_threshold, 1, 1000));
  switch (p.kind) {
    case protocol::ProbeKind::Http:
      if (p.url.rfind("http://", 0) != 0) {
        return tl::make_unexpected(ctx.error(key + ".url", node["url"], "must start with http:// (https is not supported), got '" + p.url + "'"));
      }
      break;
    case protocol::ProbeKind::Tcp:
      if (p.address.find(':') == std::string::npos) {
        return tl::make_unexpected(ctx.error(key + ".address", node["address"], "must be host:port, got '" + p.address + "'"));
      }
      break;
    case protocol::ProbeKind::Exec:
      if (p.command.empty()) return tl::make_unexpected(ctx.error(key + ".command", node, "is required for an exec probe"));
      break;
    case protocol::ProbeKind::Notify:
      break;
  }
  return {};
}

Result parse_probe_list(const Ctx& ctx, const YAML::Node& node, const std::string& key, SourceRole role,
                        std::vector<ProbeConfig>& out) {
  if (!node.IsDefined() || node.IsNull()) return {};
  if (!node.IsSequence()) return tl::make_unexpected(ctx.error(key, node, "must be a list"));
  for (std::size_t i = 0; i < node.size(); ++i) {
    ProbeConfig p;
    TRY(parse_probe(ctx, node[i], key + "[" + std::to_string(i) + "]", role, p));
    out.push_back(std::move(p));
  }
  return {};
}

Result parse_yaml(const Ctx& ctx, const YAML::Node& root, AgentConfig& c) {
  if (root.IsNull()) return {};
  TRY(check_keys(ctx, "", root, {"coordinator", "instance", "state_dir", "log_level", "link",
                                 "readiness", "health", "notify", "metrics", "commands", "hooks"}));
  if (auto n = root["coordinator"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "coordinator", n, {"endpoint", "public_key", "public_key_file"}));
    TRY(get_string(ctx, n, "endpoint", "coordinator.endpoint", c.coordinator_endpoint));
    TRY(get_string(ctx, n, "public_key", "coordinator.public_key", c.coordinator_public_key));
    std::string file;
    TRY(get_string(ctx, n, "public_key_file", "coordinator.public_key_file", file));
    if (!file.empty()) {
      auto text = read_small_file(file);
      if (!text) return tl::make_unexpected(ctx.error("coordinator.public_key_file", n["public_key_file"], text.error()));
      c.coordinator_public_key = *text;
    }
  }
  if (auto n = root["instance"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "instance", n, {"id", "id_file", "enrollment_token", "enrollment_token_file",
                                        "group", "service_address", "service_port", "labels"}));
    TRY(get_string(ctx, n, "id", "instance.id", c.instance_id));
    TRY(get_string(ctx, n, "enrollment_token", "instance.enrollment_token", c.enrollment_token));
    for (const auto& [name, target] : {std::pair<std::string, std::string*>{"id_file", &c.instance_id},
                                       {"enrollment_token_file", &c.enrollment_token}}) {
      std::string file;
      TRY(get_string(ctx, n, name, "instance." + name, file));
      if (file.empty()) continue;
      auto text = read_small_file(file);
      if (!text) return tl::make_unexpected(ctx.error("instance." + name, n[name], text.error()));
      *target = *text;
    }
    TRY(get_string(ctx, n, "group", "instance.group", c.group));
    TRY(get_string(ctx, n, "service_address", "instance.service_address", c.service_address));
    TRY(get_uint(ctx, n, "service_port", "instance.service_port", c.service_port, 0, 65535));
    if (auto l = n["labels"]; l.IsDefined() && !l.IsNull()) {
      if (!l.IsMap()) return tl::make_unexpected(ctx.error("instance.labels", l, "must be a mapping"));
      for (const auto& kv : l) {
        if (!kv.second.IsScalar()) return tl::make_unexpected(ctx.error("instance.labels." + kv.first.as<std::string>(), kv.second, "must be a string"));
        c.labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
    }
  }
  std::string state_dir;
  TRY(get_string(ctx, root, "state_dir", "state_dir", state_dir));
  if (!state_dir.empty()) c.state_dir = state_dir;
  TRY(get_string(ctx, root, "log_level", "log_level", c.log_level));
  if (auto n = root["link"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "link", n, {"welcome_timeout_ms", "backoff_base_ms", "backoff_max_ms"}));
    TRY(get_uint(ctx, n, "welcome_timeout_ms", "link.welcome_timeout_ms", c.welcome_timeout_ms, 100, 600'000));
    TRY(get_uint(ctx, n, "backoff_base_ms", "link.backoff_base_ms", c.backoff_base_ms, 1, 600'000));
    TRY(get_uint(ctx, n, "backoff_max_ms", "link.backoff_max_ms", c.backoff_max_ms, 1, 600'000));
  }
  if (auto n = root["readiness"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "readiness", n, {"period_ms", "startup_period_ms", "notify", "probes"}));
    TRY(get_uint(ctx, n, "period_ms", "readiness.period_ms", c.readiness_period_ms,
                 kMinReadinessPeriodMs, kMaxReadinessPeriodMs));
    TRY(get_uint(ctx, n, "startup_period_ms", "readiness.startup_period_ms", c.readiness_startup_period_ms,
                 kMinReadinessPeriodMs, kMaxReadinessPeriodMs));
    TRY(get_bool(ctx, n, "notify", "readiness.notify", c.notify_readiness));
    TRY(parse_probe_list(ctx, n["probes"], "readiness.probes", SourceRole::Readiness, c.probes));
  }
  if (auto n = root["health"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "health", n, {"checks"}));
    TRY(parse_probe_list(ctx, n["checks"], "health.checks", SourceRole::Health, c.probes));
  }
  if (auto n = root["notify"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "notify", n, {"socket"}));
    TRY(get_string(ctx, n, "socket", "notify.socket", c.notify_socket));
  }
  if (auto n = root["metrics"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "metrics", n, {"include_loopback", "scope", "cgroup"}));
    TRY(get_bool(ctx, n, "include_loopback", "metrics.include_loopback", c.metrics_include_loopback));
    std::string scope;
    TRY(get_string(ctx, n, "scope", "metrics.scope", scope));
    if (!scope.empty()) {
      auto parsed = parse_metrics_scope(scope);
      if (!parsed) return tl::make_unexpected(ctx.error("metrics.scope", n["scope"], parsed.error()));
      c.metrics_scope = *parsed;
    }
    TRY(get_string(ctx, n, "cgroup", "metrics.cgroup", c.metrics_cgroup));
  }
  if (auto n = root["commands"]; n.IsDefined() && !n.IsNull()) {
    TRY(check_keys(ctx, "commands", n, {"drain", "undrain", "drain_timeout_ms", "pre_stop",
                                        "shutdown_action", "poweroff_command"}));
    TRY(get_string(ctx, n, "drain", "commands.drain", c.drain_command));
    TRY(get_string(ctx, n, "undrain", "commands.undrain", c.undrain_command));
    TRY(get_uint(ctx, n, "drain_timeout_ms", "commands.drain_timeout_ms", c.drain_command_timeout_ms, 1, 3'600'000));
    TRY(get_string(ctx, n, "pre_stop", "commands.pre_stop", c.pre_stop_command));
    std::string action;
    TRY(get_string(ctx, n, "shutdown_action", "commands.shutdown_action", action));
    if (action == "exit" || action.empty()) c.shutdown_action = ShutdownAction::Exit;
    else if (action == "poweroff") c.shutdown_action = ShutdownAction::Poweroff;
    else if (action == "none") c.shutdown_action = ShutdownAction::None;
    else return tl::make_unexpected(ctx.error("commands.shutdown_action", n["shutdown_action"], "must be exit, poweroff or none, got '" + action + "'"));
    TRY(get_string(ctx, n, "poweroff_command", "commands.poweroff_command", c.poweroff_command));
  }
  if (auto n = root["hooks"]; n.IsDefined() && !n.IsNull()) {
    if (!n.IsMap()) return tl::make_unexpected(ctx.error("hooks", n, "must be a mapping of hook name to {command, timeout_ms}"));
    for (const auto& kv : n) {
      const auto name = kv.first.as<std::string>();
      const auto key = "hooks." + name;
      if (!protocol::is_valid_id(name)) return tl::make_unexpected(ctx.error(key, kv.first, "hook names are 1..128 characters of [A-Za-z0-9._:-]"));
      TRY(check_keys(ctx, key, kv.second, {"command", "timeout_ms"}));
      HookConfig h;
      TRY(get_string(ctx, kv.second, "command", key + ".command", h.command));
      if (h.command.empty()) return tl::make_unexpected(ctx.error(key + ".command", kv.second, "is required"));
      TRY(get_uint(ctx, kv.second, "timeout_ms", key + ".timeout_ms", h.timeout_ms, 1, protocol::kMaxHookTimeoutMs));
      c.hooks[name] = h;
    }
  }
  return {};
}

// Environment variable NAME, or the content of the file NAME_FILE.
tl::expected<std::optional<std::string>, ConfigError> env_value(const Environment& env, const std::string& name) {
  if (auto it = env.find(name); it != env.end()) return std::optional<std::string>(it->second);
  if (auto it = env.find(name + "_FILE"); it != env.end()) {
    auto text = read_small_file(it->second);
    if (!text) return tl::make_unexpected(ConfigError{"(environment)", name + "_FILE", text.error()});
    return std::optional<std::string>(*text);
  }
  return std::optional<std::string>{};
}

Result apply_environment(const Environment& env, AgentConfig& c) {
  const Ctx ctx{"(environment)"};
  for (const auto& [name, target] : std::initializer_list<std::pair<const char*, std::string*>>{
           {"TIDE_COORDINATOR_ENDPOINT", &c.coordinator_endpoint},
           {"TIDE_COORDINATOR_PUBLIC_KEY", &c.coordinator_public_key},
           {"TIDE_INSTANCE_ID", &c.instance_id},
           {"TIDE_ENROLLMENT_TOKEN", &c.enrollment_token},
           {"TIDE_GROUP", &c.group},
           {"TIDE_SERVICE_ADDRESS", &c.service_address},
           {"TIDE_LOG_LEVEL", &c.log_level},
           {"TIDE_NOTIFY_SOCKET", &c.notify_socket}}) {
    auto v = env_value(env, name);
    if (!v) return tl::make_unexpected(v.error());
    if (*v) *target = **v;
  }
  auto port = env_value(env, "TIDE_SERVICE_PORT");
  if (!port) return tl::make_unexpected(port.error());
  if (*port) TRY(parse_uint_text(ctx, YAML::Node(), "TIDE_SERVICE_PORT", **port, c.service_port, 0, 65535));
  // An empty value leaves the default: a launcher passes every variable,
  // empty when the launch configuration does not set it.
  for (const auto& [name, target] : std::initializer_list<std::pair<const char*, std::uint32_t*>>{
           {"TIDE_READINESS_PERIOD_MS", &c.readiness_period_ms},
           {"TIDE_READINESS_STARTUP_PERIOD_MS", &c.readiness_startup_period_ms}}) {
    auto v = env_value(env, name);
    if (!v) return tl::make_unexpected(v.error());
    if (*v && !(*v)->empty()) {
      TRY(parse_uint_text(ctx, YAML::Node(), name, **v, *target, kMinReadinessPeriodMs, kMaxReadinessPeriodMs));
    }
  }
  auto scope = env_value(env, "TIDE_METRICS_SCOPE");
  if (!scope) return tl::make_unexpected(scope.error());
  if (*scope && !(*scope)->empty()) {
    auto parsed = parse_metrics_scope(**scope);
    if (!parsed) return tl::make_unexpected(ConfigError{"(environment)", "TIDE_METRICS_SCOPE", parsed.error()});
    c.metrics_scope = *parsed;
  }
  auto state = env_value(env, "TIDE_STATE_DIR");
  if (!state) return tl::make_unexpected(state.error());
  if (*state && !(*state)->empty()) c.state_dir = **state;
  auto http = env_value(env, "TIDE_READINESS_HTTP");
  if (!http) return tl::make_unexpected(http.error());
  if (*http && !(*http)->empty()) {
    if ((*http)->rfind("http://", 0) != 0) {
      return tl::make_unexpected(ConfigError{"(environment)", "TIDE_READINESS_HTTP", "must start with http://, got '" + **http + "'"});
    }
    // Replaces a readiness probe of the same name from the file.
    std::erase_if(c.probes, [](const ProbeConfig& p) { return p.name == "env-http"; });
    ProbeConfig p;
    p.name = "env-http";
    p.kind = protocol::ProbeKind::Http;
    p.url = **http;
    c.probes.push_back(p);
  }
  return {};
}

Result validate(AgentConfig& c) {
  const Ctx ctx{c.source};
  if (c.instance_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) c.instance_id = host;
  }
  if (!protocol::is_valid_id(c.instance_id)) {
    return tl::make_unexpected(ConfigError{c.source, "instance.id (TIDE_INSTANCE_ID)",
        "must be 1..128 characters of [A-Za-z0-9._:-], got '" + c.instance_id + "'"});
  }
  if (c.enrollment_token.size() > protocol::kMaxTokenLength) {
    return tl::make_unexpected(ConfigError{c.source, "instance.enrollment_token (TIDE_ENROLLMENT_TOKEN)", "is longer than 256 bytes"});
  }
  if (c.coordinator_endpoint.rfind("tcp://", 0) != 0 && c.coordinator_endpoint.rfind("ipc://", 0) != 0) {
    return tl::make_unexpected(ConfigError{c.source, "coordinator.endpoint (TIDE_COORDINATOR_ENDPOINT)",
        "must be tcp://host:port or ipc://path, got '" + c.coordinator_endpoint + "'"});
  }
  if (!c.coordinator_public_key.empty() && c.coordinator_public_key.size() != 40) {
    return tl::make_unexpected(ConfigError{c.source, "coordinator.public_key (TIDE_COORDINATOR_PUBLIC_KEY)",
        "must be a 40-character Z85 CURVE key"});
  }
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "warning", "error", "critical", "off"};
  if (levels.count(c.log_level) == 0) {
    return tl::make_unexpected(ConfigError{c.source, "log_level (TIDE_LOG_LEVEL)",
        "must be one of trace, debug, info, warn, error, critical, off; got '" + c.log_level + "'"});
  }
  if (c.backoff_base_ms > c.backoff_max_ms) {
    return tl::make_unexpected(ConfigError{c.source, "link.backoff_base_ms", "must not exceed link.backoff_max_ms"});
  }
  if (c.notify_readiness && c.notify_socket.empty()) c.notify_socket = (c.state_dir / "notify.sock").string();
  if (c.probes.size() + (c.notify_readiness ? 1 : 0) > protocol::kMaxProbes) {
    return tl::make_unexpected(ConfigError{c.source, "readiness.probes", "more than 32 probes and checks in all"});
  }
  std::set<std::string> names;
  for (const auto& p : c.probes) {
    if (!names.insert(p.name).second || p.name == "notify") {
      return tl::make_unexpected(ConfigError{c.source, "readiness.probes", "probe name '" + p.name + "' is used twice (or is the reserved name notify)"});
    }
  }
  if (!c.group.empty()) c.labels["group"] = c.group;
  if (c.labels.size() > protocol::kMaxLabels) {
    return tl::make_unexpected(ConfigError{c.source, "instance.labels", "more than 64 labels"});
  }
  return {};
}

}  // namespace

ProbeTiming probe_timing(const AgentConfig& config, const ProbeConfig& probe) {
  ProbeTiming t;
  t.initial_delay_ms = probe.initial_delay_ms;
  switch (probe.role) {
    case SourceRole::Readiness:
      t.period_ms = probe.period_ms.value_or(config.readiness_period_ms);
      t.startup_period_ms = probe.startup_period_ms.value_or(config.readiness_startup_period_ms);
      break;
    case SourceRole::Health:
      // A health check starts passing; there is no readiness to hurry for.
      t.period_ms = probe.period_ms.value_or(kDefaultHealthPeriodMs);
      t.startup_period_ms = probe.startup_period_ms.value_or(t.period_ms);
      break;
  }
  return t;
}

std::string ConfigError::to_string() const { return file + ": " + key + ": " + what; }

Environment current_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (kv.substr(0, 5) != "TIDE_") continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

tl::expected<AgentConfig, ConfigError> load_config(const std::optional<std::filesystem::path>& path,
                                                   const Environment& env) {
  AgentConfig c;
  if (path) {
    c.source = path->string();
    const Ctx ctx{c.source};
    YAML::Node root;
    try {
      std::ifstream in(*path);
      if (!in) return tl::make_unexpected(ConfigError{c.source, "(file)", "cannot be opened"});
      root = YAML::Load(in);
    } catch (const YAML::Exception& e) {
      return tl::make_unexpected(ConfigError{c.source + ":" + std::to_string(e.mark.line + 1), "(syntax)", e.msg});
    }
    try {
      TRY(parse_yaml(ctx, root, c));
    } catch (const YAML::Exception& e) {
      return tl::make_unexpected(ConfigError{c.source + ":" + std::to_string(e.mark.line + 1), "(value)", e.msg});
    }
  }
  TRY(apply_environment(env, c));
  TRY(validate(c));
  return c;
}

}  // namespace tide::agent
