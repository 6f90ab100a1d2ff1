#include "coordinator/io/server/config.hpp"

#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "coordinator/core/duration.hpp"
#include "coordinator/io/haproxy/tls.hpp"

namespace tide::coordinator {
namespace {

#define TIDE_SECTION_TRY(expr)                              \
  do {                                                        \
    if (auto tide_r_ = (expr); !tide_r_) return tide_r_;      \
  } while (false)

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

  // A time-out given as a duration (`key: 30s`) or in milliseconds
  // (`key_ms: 30000`), not both; `out_ms` keeps its value when neither is there.
  [[nodiscard]] tl::expected<void, ConfigError> get_duration(const std::string& key, std::uint32_t& out_ms) {
    const YAML::Node text = child(key);
    const YAML::Node ms = child(key + "_ms");
    if (text && ms) return tl::make_unexpected(error(key, "give either " + key + " or " + key + "_ms, not both"));
    if (ms) {
      TIDE_SECTION_TRY(get(key + "_ms", out_ms));
      if (out_ms == 0 || out_ms > 86'400'000) {
        return tl::make_unexpected(error(key + "_ms", "must be 1..86400000 (24 h)"));
      }
      return {};
    }
    if (!text) return {};
    if (!text.IsScalar()) return tl::make_unexpected(error(key, "expected a duration like 30s, 500ms, 5m"));
    auto parsed = parse_duration_ms(text.as<std::string>());
    if (!parsed) return tl::make_unexpected(error(key, parsed.error()));
    out_ms = *parsed;
    return {};
  }

  // A duration of any length (`key: 7d`); validate() checks its bounds.
  [[nodiscard]] tl::expected<void, ConfigError> get_long_duration(const std::string& key, std::int64_t& out_ms) {
    const YAML::Node text = child(key);
    if (!text) return {};
    if (!text.IsScalar()) return tl::make_unexpected(error(key, "expected a duration like 7d, 36h"));
    auto parsed = parse_duration(text.as<std::string>());
    if (!parsed) return tl::make_unexpected(error(key, parsed.error()));
    out_ms = *parsed;
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
  TIDE_TRY(api.get("console", config.api.console));
  TIDE_TRY(api.get("console_dir", config.api.console_dir));
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
      TIDE_TRY(item.get_duration("timeout_server", backend.timeout_server_ms));
      TIDE_TRY(item.get_duration("timeout_connect", backend.timeout_connect_ms));
      TIDE_TRY(item.get_duration("timeout_queue", backend.timeout_queue_ms));
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
      TIDE_TRY(item.get("forwarded_for", frontend.forwarded_for));
      TIDE_TRY(item.get("access_log", frontend.access_log));
      TIDE_TRY(item.get_duration("timeout_client", frontend.timeout_client_ms));
      TIDE_TRY(item.get_duration("timeout_http_request", frontend.timeout_http_request_ms));
      Section tls(item.child("tls"), path + ".tls", source);
      TIDE_TRY(tls.get("http2", frontend.tls.http2));
      TIDE_TRY(tls.get("redirect_port", frontend.tls.redirect_port));
      TIDE_TRY(tls.get("redirect_code", frontend.tls.redirect_code));
      TIDE_TRY(tls.get("watch", frontend.tls.watch));
      TIDE_TRY(tls.get_duration("watch_interval", frontend.tls.watch_interval_ms));
      const YAML::Node certificates = tls.child("certificates");
      if (certificates) {
        if (!certificates.IsSequence()) return tl::make_unexpected(tls.error("certificates", "expected a list"));
        for (std::size_t j = 0; j < certificates.size(); ++j) {
          Section cert_item(certificates[j], path + ".tls.certificates[" + std::to_string(j) + "]", source);
          LbCertificateConfig certificate;
          TIDE_TRY(cert_item.get("cert", certificate.cert));
          TIDE_TRY(cert_item.get("key", certificate.key));
          TIDE_TRY(cert_item.check_unknown());
          frontend.tls.certificates.push_back(std::move(certificate));
        }
      }
      TIDE_TRY(tls.check_unknown());
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
  Section history(top.child("history"), "history", source);
  TIDE_TRY(history.get_long_duration("retention", config.history.retention_ms));
  TIDE_TRY(history.get_duration("interval", config.history.interval_ms));
  TIDE_TRY(history.check_unknown());
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

// The TLS, redirect and access-log settings of one frontend; the error is
// (key, what is wrong). Reads every certificate: a missing or unreadable file,
// one without a certificate or without its private key is refused here, at
// --check-config and at start, not by HAProxy later.
tl::expected<void, std::pair<std::string, std::string>> validate_tls(const LbFrontendConfig& frontend,
                                                                     const std::string& key,
                                                                     const std::filesystem::path& state_dir,
                                                                     std::set<std::uint16_t>& ports) {
  using Err = tl::unexpected<std::pair<std::string, std::string>>;
  const LbTlsConfig& tls = frontend.tls;
  std::map<std::string, std::size_t> sni;  // name -> certificate index
  for (std::size_t j = 0; j < tls.certificates.size(); ++j) {
    const auto& certificate = tls.certificates[j];
    const std::string cert_key = key + ".tls.certificates[" + std::to_string(j) + "]";
    if (certificate.cert.empty()) return Err({cert_key + ".cert", "required (a PEM file)"});
    auto bundle = haproxy::load_pem_bundle(certificate.cert, certificate.key);
    if (!bundle) {
      const bool about_key = !certificate.key.empty() && bundle.error().rfind(certificate.key + ":", 0) == 0;
      return Err({cert_key + (about_key ? ".key" : ".cert"), bundle.error()});
    }
    if (bundle->names.empty()) return Err({cert_key + ".cert", certificate.cert + ": the certificate names no host (no subjectAltName DNS name, no CN)"});
    for (const auto& name : bundle->names) {
      if (auto [at, inserted] = sni.emplace(name, j); !inserted && at->second != j) {
        return Err({cert_key + ".cert", "duplicate SNI name '" + name + "': " + key + ".tls.certificates[" +
                                            std::to_string(at->second) + "] has it too, so HAProxy could serve either"});
      }
    }
  }
  if (tls.redirect_port != 0) {
    if (tls.certificates.empty()) return Err({key + ".tls.redirect_port", "needs tls.certificates (a redirect to https needs https)"});
    if (tls.redirect_port == frontend.bind_port) return Err({key + ".tls.redirect_port", "equals bind_port " + std::to_string(frontend.bind_port)});
    if (!ports.insert(tls.redirect_port).second) return Err({key + ".tls.redirect_port", "port " + std::to_string(tls.redirect_port) + " used twice (another bind has it)"});
    static const std::set<std::uint16_t> kCodes = {301, 302, 303, 307, 308};
    if (kCodes.count(tls.redirect_code) == 0) return Err({key + ".tls.redirect_code", "must be 301, 302, 303, 307 or 308"});
  }
  if (!frontend.access_log.empty() && frontend.access_log != "log") {
    const std::filesystem::path file = frontend.access_log;
    if (!file.is_absolute()) return Err({key + ".access_log", "must be 'log' (the coordinator's log) or an absolute file path"});
    std::error_code ec;
    if (!std::filesystem::is_directory(file.parent_path(), ec)) {
      return Err({key + ".access_log", "directory " + file.parent_path().string() + " does not exist"});
    }
  }
  if (!frontend.access_log.empty() && access_log_socket(state_dir, frontend.name).string().size() > 107) {
    return Err({key + ".access_log", "state_dir is too long for the access log's unix socket (" +
                                         access_log_socket(state_dir, frontend.name).string() + ")"});
  }
  return {};
}

}  // namespace

tl::expected<std::uint32_t, std::string> parse_duration_ms(const std::string& text) {
  // The one duration syntax of tide (core/duration.hpp); a unit is required.
  auto ms = parse_duration(text);
  if (!ms) return tl::make_unexpected(ms.error());
  if (*ms <= 0 || *ms > 86'400'000) return tl::make_unexpected("'" + text + "' must be between 1ms and 24h");
  return static_cast<std::uint32_t>(*ms);
}

std::filesystem::path certificate_file(const std::filesystem::path& state_dir, const std::string& frontend,
                                       std::size_t index) {
  return state_dir / "tls" / (frontend + "." + std::to_string(index) + ".pem");
}

std::filesystem::path access_log_socket(const std::filesystem::path& state_dir, const std::string& frontend) {
  return state_dir / ("access-" + frontend + ".sock");
}

std::vector<std::string> changes_needing_restart(const CoordinatorConfig& running, const CoordinatorConfig& fresh) {
  std::vector<std::string> out;
  if (running.state_dir != fresh.state_dir) out.emplace_back("state_dir");
  if (running.log_level != fresh.log_level) out.emplace_back("log_level");
  if (running.tick_interval_ms != fresh.tick_interval_ms) out.emplace_back("tick_interval_ms");
  if (!(running.agents == fresh.agents)) out.emplace_back("agents");
  if (!(running.api == fresh.api)) out.emplace_back("api");
  if (!(running.provider == fresh.provider)) out.emplace_back("provider");
  if (!(running.prometheus == fresh.prometheus)) out.emplace_back("prometheus");
  if (!(running.history == fresh.history)) out.emplace_back("history");
  const LoadBalancerConfig& a = running.load_balancer;
  const LoadBalancerConfig& b = fresh.load_balancer;
  if (a.type != b.type) out.emplace_back("load_balancer.type");
  if (a.embedded != b.embedded) out.emplace_back("load_balancer.embedded");
  if (a.haproxy_path != b.haproxy_path) out.emplace_back("load_balancer.haproxy_path");
  if (a.socket != b.socket) out.emplace_back("load_balancer.socket");
  if (a.reconcile_interval_ms != b.reconcile_interval_ms) out.emplace_back("load_balancer.reconcile_interval_ms");
  if (a.keep_running_on_stop != b.keep_running_on_stop) out.emplace_back("load_balancer.keep_running_on_stop");
  // The backends' names and slots shape the driver and the fleet; their
  // time-outs are only HAProxy configuration.
  bool same_backends = a.backends.size() == b.backends.size();
  for (std::size_t i = 0; same_backends && i < a.backends.size(); ++i) {
    same_backends = a.backends[i].name == b.backends[i].name && a.backends[i].slots == b.backends[i].slots &&
                    a.backends[i].bind_address == b.backends[i].bind_address &&
                    a.backends[i].bind_port == b.backends[i].bind_port;
  }
  if (!same_backends) out.emplace_back("load_balancer.backends (names, slots, binds)");
  // Frontends are applied by a reload of the embedded HAProxy only.
  if (!a.embedded && !(a.frontends == b.frontends)) out.emplace_back("load_balancer.frontends (HAProxy is not embedded)");
  return out;
}

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
  if (config.history.retention_ms < 3'600'000 || config.history.retention_ms > 366 * 86'400'000LL) {
    return fail("history.retention", "must be between 1h and 366d (got " + typed_duration(config.history.retention_ms) + ")");
  }
  if (config.history.interval_ms < 100 || config.history.interval_ms > kHistoryIntervalMs) {
    return fail("history.interval", "must be between 100ms and 10s (got " + typed_duration(config.history.interval_ms) + ")");
  }
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
    if (auto tls = validate_tls(frontend, key, config.state_dir, ports); !tls) return fail(tls.error().first, tls.error().second);
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

std::vector<haproxy::FrontendSpec> haproxy_frontends(const LoadBalancerConfig& config,
                                                     const std::filesystem::path& state_dir) {
  std::vector<haproxy::FrontendSpec> out;
  for (const auto& frontend : config.frontends) {
    haproxy::FrontendSpec spec;
    spec.name = frontend.name;
    spec.bind_address = frontend.bind_address;
    spec.bind_port = frontend.bind_port;
    spec.default_backend = frontend.default_backend;
    for (const auto& route : frontend.routes) spec.routes.push_back({route.path_prefix, route.backend});
    for (std::size_t i = 0; i < frontend.tls.certificates.size(); ++i) {
      spec.certificates.push_back(certificate_file(state_dir, frontend.name, i).string());
    }
    spec.http2 = frontend.tls.http2;
    spec.redirect_port = frontend.tls.redirect_port;
    spec.redirect_code = frontend.tls.redirect_code;
    spec.forwarded_for = frontend.forwarded_for;
    spec.timeout_client_ms = frontend.timeout_client_ms;
    spec.timeout_http_request_ms = frontend.timeout_http_request_ms;
    if (!frontend.access_log.empty()) spec.access_log = access_log_socket(state_dir, frontend.name).string();
    out.push_back(std::move(spec));
  }
  return out;
}

std::vector<haproxy::BackendSpec> haproxy_backends(const LoadBalancerConfig& config) {
  std::vector<haproxy::BackendSpec> out;
  for (const auto& backend : config.backends) {
    haproxy::BackendSpec spec;
    spec.name = backend.name;
    spec.bind_address = backend.bind_address;
    spec.bind_port = backend.bind_port;
    spec.slot_count = backend.slots;
    spec.timeout_server_ms = backend.timeout_server_ms;
    spec.timeout_connect_ms = backend.timeout_connect_ms;
    spec.timeout_queue_ms = backend.timeout_queue_ms;
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
