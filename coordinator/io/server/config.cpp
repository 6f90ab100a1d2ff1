#include "coordinator/io/server/config.hpp"

#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>

#include <yaml-cpp/yaml.h>

namespace tide::coordinator {
namespace {

// Reads one YAML mapping, remembering which keys were used so that unknown
// (misspelt) keys can be reported.
class Section {
 public:
  Section(const YAML::Node& node, std::string path, const std::string& source)
      : m_node(node), m_path(std::move(path)), m_source(source) {}

  [[nodiscard]] std::string key_path(const std::string& key) const {
    return m_path.empty() ? key : m_path + "." + key;
  }

  [[nodiscard]] ConfigError error(const std::string& key, const std::string& what) const {
    return ConfigError{m_source + ": " + key_path(key) + ": " + what};
  }

  [[nodiscard]] YAML::Node child(const std::string& key) {
    m_used.insert(key);
    return m_node[key];
  }

  // Assigns `out` when the key is present; the error names the key.
  template <class T>
  [[nodiscard]] tl::expected<void, ConfigError> get(const std::string& key, T& out) {
    const YAML::Node value = child(key);
    if (!value) return {};
    try {
      if constexpr (std::is_same_v<T, std::filesystem::path>) {
        out = value.as<std::string>();
      } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        const auto wide = value.as<long long>();
        if (wide < 0 || static_cast<unsigned long long>(wide) > std::numeric_limits<T>::max()) {
          return tl::make_unexpected(error(key, "out of range: " + value.as<std::string>()));
        }
        out = static_cast<T>(wide);
      } else {
        out = value.as<T>();
      }
    } catch (const YAML::Exception&) {
      return tl::make_unexpected(error(key, "wrong type: '" + YAML::Dump(value) + "'"));
    }
    return {};
  }

  [[nodiscard]] tl::expected<void, ConfigError> check_unknown() const {
    if (!m_node) return {};
    if (!m_node.IsMap()) return tl::make_unexpected(ConfigError{m_source + ": " + m_path + ": expected a mapping"});
    for (const auto& item : m_node) {
      const auto key = item.first.as<std::string>();
      if (m_used.count(key) == 0) return tl::make_unexpected(error(key, "unknown key"));
    }
    return {};
  }

 private:
  YAML::Node m_node;
  std::string m_path;
  const std::string& m_source;
  std::set<std::string> m_used;
};

#define TIDE_TRY(expr)                                         \
  do {                                                         \
    if (auto tide_result_ = (expr); !tide_result_) {           \
      return tl::make_unexpected(std::move(tide_result_.error())); \
    }                                                          \
  } while (false)

tl::expected<CoordinatorConfig, ConfigError> parse_root(const YAML::Node& root, const std::string& source) {
  CoordinatorConfig config;
  config.source = source;
  if (!root || root.IsNull()) return config;  // an empty file means all defaults
  Section top(root, "", source);
  TIDE_TRY(top.get("state_dir", config.state_dir));
  TIDE_TRY(top.get("log_level", config.log_level));
  TIDE_TRY(top.get("tick_interval_ms", config.tick_interval_ms));

  Section agents(top.child("agents"), "agents", source);
  TIDE_TRY(agents.get("listen", config.agents.listen));
  TIDE_TRY(agents.get("advertise", config.agents.advertise));
  TIDE_TRY(agents.get("curve", config.agents.curve));
  TIDE_TRY(agents.get("report_interval_ms", config.agents.report_interval_ms));
  TIDE_TRY(agents.get("heartbeat_interval_ms", config.agents.heartbeat_interval_ms));
  TIDE_TRY(agents.get("liveness", config.agents.liveness));
  TIDE_TRY(agents.check_unknown());

  Section api(top.child("api"), "api", source);
  TIDE_TRY(api.get("listen_address", config.api.listen_address));
  TIDE_TRY(api.get("listen_port", config.api.listen_port));
  TIDE_TRY(api.get("token", config.api.token));
  std::filesystem::path token_file;
  TIDE_TRY(api.get("token_file", token_file));
  TIDE_TRY(api.check_unknown());
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return tl::make_unexpected(api.error("token_file", "cannot read " + token_file.string()));
    std::getline(in, config.api.token);
  }

  Section provider(top.child("provider"), "provider", source);
  TIDE_TRY(provider.get("type", config.provider.type));
  TIDE_TRY(provider.get("check_interval_ms", config.provider.check_interval_ms));
  Section local(provider.child("local"), "provider.local", source);
  TIDE_TRY(local.get("agent_path", config.provider.local.agent_path));
  TIDE_TRY(local.get("agent_log_level", config.provider.local.agent_log_level));
  TIDE_TRY(local.get("address_prefix", config.provider.local.address_prefix));
  TIDE_TRY(local.check_unknown());
  Section exec(provider.child("exec"), "provider.exec", source);
  TIDE_TRY(exec.get("launch", config.provider.exec.launch));
  TIDE_TRY(exec.get("terminate", config.provider.exec.terminate));
  TIDE_TRY(exec.get("list", config.provider.exec.list));
  TIDE_TRY(exec.get("describe", config.provider.exec.describe));
  TIDE_TRY(exec.get("timeout_ms", config.provider.exec.timeout_ms));
  TIDE_TRY(exec.check_unknown());
  TIDE_TRY(provider.check_unknown());

  Section lb(top.child("load_balancer"), "load_balancer", source);
  TIDE_TRY(lb.get("type", config.load_balancer.type));
  TIDE_TRY(lb.get("embedded", config.load_balancer.embedded));
  TIDE_TRY(lb.get("haproxy_path", config.load_balancer.haproxy_path));
  TIDE_TRY(lb.get("socket", config.load_balancer.socket));
  TIDE_TRY(lb.get("reconcile_interval_ms", config.load_balancer.reconcile_interval_ms));
  TIDE_TRY(lb.get("keep_running_on_stop", config.load_balancer.keep_running_on_stop));
  const YAML::Node backends = lb.child("backends");
  if (backends) {
    if (!backends.IsSequence()) return tl::make_unexpected(lb.error("backends", "expected a list"));
    for (std::size_t i = 0; i < backends.size(); ++i) {
      Section item(backends[i], "load_balancer.backends[" + std::to_string(i) + "]", source);
      LbBackendConfig backend;
      TIDE_TRY(item.get("name", backend.name));
      TIDE_TRY(item.get("bind_address", backend.bind_address));
      TIDE_TRY(item.get("bind_port", backend.bind_port));
      TIDE_TRY(item.get("slots", backend.slots));
      TIDE_TRY(item.check_unknown());
      config.load_balancer.backends.push_back(std::move(backend));
    }
  }
  const YAML::Node frontends = lb.child("frontends");
  if (frontends) {
    if (!frontends.IsSequence()) return tl::make_unexpected(lb.error("frontends", "expected a list"));
    for (std::size_t i = 0; i < frontends.size(); ++i) {
      const std::string path = "load_balancer.frontends[" + std::to_string(i) + "]";
      Section item(frontends[i], path, source);
      LbFrontendConfig frontend;
      TIDE_TRY(item.get("name", frontend.name));
      TIDE_TRY(item.get("bind_address", frontend.bind_address));
      TIDE_TRY(item.get("bind_port", frontend.bind_port));
      TIDE_TRY(item.get("default_backend", frontend.default_backend));
      const YAML::Node routes = item.child("routes");
      if (routes) {
        if (!routes.IsSequence()) return tl::make_unexpected(item.error("routes", "expected a list"));
        for (std::size_t j = 0; j < routes.size(); ++j) {
          Section route_item(routes[j], path + ".routes[" + std::to_string(j) + "]", source);
          LbRouteConfig route;
          TIDE_TRY(route_item.get("path_prefix", route.path_prefix));
          TIDE_TRY(route_item.get("backend", route.backend));
          TIDE_TRY(route_item.check_unknown());
          frontend.routes.push_back(std::move(route));
        }
      }
      TIDE_TRY(item.check_unknown());
      config.load_balancer.frontends.push_back(std::move(frontend));
    }
  }
  TIDE_TRY(lb.check_unknown());

  Section prometheus(top.child("prometheus"), "prometheus", source);
  TIDE_TRY(prometheus.get("url", config.prometheus.url));
  std::filesystem::path bearer_token_file;
  TIDE_TRY(prometheus.get("bearer_token_file", bearer_token_file));
  TIDE_TRY(prometheus.get("timeout_ms", config.prometheus.timeout_ms));
  TIDE_TRY(prometheus.get("interval_ms", config.prometheus.interval_ms));
  TIDE_TRY(prometheus.check_unknown());
  if (!bearer_token_file.empty()) {
    // A secret: only from a file, never inline in a config that is often
    // world-readable and checked in.
    std::ifstream in(bearer_token_file);
    if (!in) return tl::make_unexpected(prometheus.error("bearer_token_file", "cannot read " + bearer_token_file.string()));
    std::getline(in, config.prometheus.bearer_token);
    if (config.prometheus.bearer_token.empty()) {
      return tl::make_unexpected(prometheus.error("bearer_token_file", bearer_token_file.string() + " is empty"));
    }
  }
  TIDE_TRY(top.check_unknown());
  TIDE_TRY(validate(config));
  return config;
}

bool is_loopback_host(std::string_view host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

// Whether only this machine can reach a ZeroMQ bind endpoint: ipc://, or
// tcp:// on a loopback address (a wildcard or an interface name is not).
bool is_local_endpoint(std::string_view endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  const std::string_view address = endpoint.substr(6);
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return is_loopback_host(host);
}

}  // namespace

tl::expected<void, ConfigError> validate(const CoordinatorConfig& config) {
  const auto fail = [&](const std::string& key, const std::string& what) {
    return tl::make_unexpected(ConfigError{config.source + ": " + key + ": " + what});
  };
  static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (kLevels.count(config.log_level) == 0) return fail("log_level", "must be one of trace, debug, info, warn, error, critical, off");
  if (config.state_dir.empty()) return fail("state_dir", "must not be empty");
  if (config.tick_interval_ms < 10 || config.tick_interval_ms > 10'000) return fail("tick_interval_ms", "must be 10..10000");
  if (config.agents.listen.rfind("tcp://", 0) != 0 && config.agents.listen.rfind("ipc://", 0) != 0) {
    return fail("agents.listen", "must be a tcp:// or ipc:// endpoint");
  }
  if (!config.agents.curve && !is_local_endpoint(config.agents.listen)) {
    // Without CURVE nothing binds an agent to its instance: the enrollment
    // token is sent in the clear on every HELLO and stays valid, a password
    // anyone on the path could replay (protocol/SPEC.md 10.4).
    return fail("agents.curve",
                "false is allowed only with a loopback or ipc:// agents.listen (got '" +
                    config.agents.listen +
                    "'); agents on other machines need CURVE (set agents.curve: true)");
  }
  if (config.agents.report_interval_ms < 100 || config.agents.report_interval_ms > 60'000) return fail("agents.report_interval_ms", "must be 100..60000");
  if (config.agents.heartbeat_interval_ms < 100 || config.agents.heartbeat_interval_ms > 60'000) return fail("agents.heartbeat_interval_ms", "must be 100..60000");
  if (config.agents.liveness < 2 || config.agents.liveness > 20) return fail("agents.liveness", "must be 2..20");
  if (config.api.listen_port == 0) return fail("api.listen_port", "must be 1..65535");
  if (!is_loopback_host(config.api.listen_address) && config.api.token.empty()) {
    return fail("api.token", "required when api.listen_address is not loopback");
  }
  if (config.provider.type != "local" && config.provider.type != "exec") return fail("provider.type", "must be local or exec");
  if (config.provider.type == "exec" &&
      (config.provider.exec.launch.empty() || config.provider.exec.terminate.empty() || config.provider.exec.list.empty())) {
    return fail("provider.exec", "launch, terminate and list scripts are required");
  }
  {
    const std::string& prefix = config.provider.local.address_prefix;
    int a = -1, b = -1, c = -1;
    char dot = 0;
    if (std::sscanf(prefix.c_str(), "%d.%d.%d%c", &a, &b, &c, &dot) != 4 || dot != '.' || a != 127 || b < 0 ||
        b > 255 || c < 0 || c > 255 || prefix.back() != '.') {
      return fail("provider.local.address_prefix", "must look like 127.X.Y. (a loopback /24)");
    }
  }
  if (!config.prometheus.url.empty()) {
    const std::string& url = config.prometheus.url;
    const bool http = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
    const std::size_t host = url.find("://") + 3;
    if (!http || host >= url.size() || url[host] == '/' || url.find_first_of(" \t\r\n?#") != std::string::npos) {
      return fail("prometheus.url", "must be an http:// or https:// URL with a host and no query (got '" + url + "')");
    }
  }
  if (config.prometheus.timeout_ms < 100 || config.prometheus.timeout_ms > 60'000) return fail("prometheus.timeout_ms", "must be 100..60000");
  if (config.prometheus.interval_ms < 1'000 || config.prometheus.interval_ms > 300'000) return fail("prometheus.interval_ms", "must be 1000..300000");
  if (config.load_balancer.type != "haproxy" && config.load_balancer.type != "none") return fail("load_balancer.type", "must be haproxy or none");
  std::set<std::string> names;
  std::set<std::uint16_t> ports;
  std::set<std::string> routed;  // backends some shared frontend sends requests to
  for (const auto& frontend : config.load_balancer.frontends) {
    if (!frontend.default_backend.empty()) routed.insert(frontend.default_backend);
    for (const auto& route : frontend.routes) routed.insert(route.backend);
  }
  for (std::size_t i = 0; i < config.load_balancer.backends.size(); ++i) {
    const auto& backend = config.load_balancer.backends[i];
    const std::string key = "load_balancer.backends[" + std::to_string(i) + "]";
    if (backend.name.empty()) return fail(key + ".name", "required");
    if (!names.insert(backend.name).second) return fail(key + ".name", "duplicate backend '" + backend.name + "'");
    if (backend.bind_port != 0 && !ports.insert(backend.bind_port).second) return fail(key + ".bind_port", "port used twice");
    if (backend.slots < 1 || backend.slots > 4096) return fail(key + ".slots", "must be 1..4096");
  }
  std::set<std::string> frontend_names;
  for (std::size_t i = 0; i < config.load_balancer.frontends.size(); ++i) {
    const auto& frontend = config.load_balancer.frontends[i];
    const std::string key = "load_balancer.frontends[" + std::to_string(i) + "]";
    if (frontend.name.empty()) return fail(key + ".name", "required");
    if (frontend.name.rfind("fe_", 0) == 0) return fail(key + ".name", "'fe_' names are reserved for the backends' own frontends");
    if (!frontend_names.insert(frontend.name).second) return fail(key + ".name", "duplicate frontend '" + frontend.name + "'");
    if (frontend.bind_port == 0) return fail(key + ".bind_port", "required (1..65535)");
    if (!ports.insert(frontend.bind_port).second) return fail(key + ".bind_port", "port used twice");
    if (frontend.default_backend.empty() && frontend.routes.empty()) {
      return fail(key, "needs a default_backend or at least one route");
    }
    if (!frontend.default_backend.empty() && names.count(frontend.default_backend) == 0) {
      return fail(key + ".default_backend", "unknown backend '" + frontend.default_backend + "' (not in load_balancer.backends)");
    }
    for (std::size_t j = 0; j < frontend.routes.size(); ++j) {
      const auto& route = frontend.routes[j];
      const std::string route_key = key + ".routes[" + std::to_string(j) + "]";
      if (route.path_prefix.empty() || route.path_prefix[0] != '/') return fail(route_key + ".path_prefix", "must start with '/'");
      if (route.path_prefix.find_first_of(" \t\r\n#\"'\\}") != std::string::npos) {
        return fail(route_key + ".path_prefix", "must not contain spaces, quotes, '#' or '}'");
      }
      if (names.count(route.backend) == 0) return fail(route_key + ".backend", "unknown backend '" + route.backend + "' (not in load_balancer.backends)");
    }
  }
  // After the frontends: a misspelt route is the likelier cause of an unrouted backend.
  for (std::size_t i = 0; i < config.load_balancer.backends.size(); ++i) {
    const auto& backend = config.load_balancer.backends[i];
    if (backend.bind_port == 0 && routed.count(backend.name) == 0) {
      return fail("load_balancer.backends[" + std::to_string(i) + "].bind_port",
                  "required (1..65535) unless a load_balancer.frontends entry routes to '" + backend.name + "'");
    }
  }
  return {};
}

std::vector<haproxy::FrontendSpec> haproxy_frontends(const LoadBalancerConfig& config) {
  std::vector<haproxy::FrontendSpec> out;
  for (const auto& frontend : config.frontends) {
    haproxy::FrontendSpec spec;
    spec.name = frontend.name;
    spec.bind_address = frontend.bind_address;
    spec.bind_port = frontend.bind_port;
    spec.default_backend = frontend.default_backend;
    for (const auto& route : frontend.routes) spec.routes.push_back({route.path_prefix, route.backend});
    out.push_back(std::move(spec));
  }
  return out;
}

tl::expected<CoordinatorConfig, ConfigError> parse_config(const std::string& yaml, const std::string& source) {
  try {
    return parse_root(YAML::Load(yaml), source);
  } catch (const YAML::ParserException& e) {
    return tl::make_unexpected(ConfigError{source + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg});
  } catch (const YAML::Exception& e) {
    return tl::make_unexpected(ConfigError{source + ": " + e.what()});
  }
}

tl::expected<CoordinatorConfig, ConfigError> load_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return tl::make_unexpected(ConfigError{file.string() + ": cannot read the file"});
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string());
}

}  // namespace tide::coordinator
