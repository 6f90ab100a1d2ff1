#include "coordinator/io/server/server.hpp"

#include <chrono>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/load_balancer.hpp"
#include "coordinator/io/json/json_model.hpp"
#include "coordinator/io/prometheus/prometheus_client.hpp"
#include "coordinator/io/provider/exec_provider.hpp"
#include "coordinator/io/provider/local_provider.hpp"
#include "coordinator/io/store/store.hpp"
#include "protocol/transport/curve.hpp"

namespace tide::coordinator {

namespace {

// How often HAProxy's per-server figures are read (the load balancer's
// metrics and a canary's verdict).
constexpr std::uint64_t kTrafficSampleMs = 1'000;

std::uint64_t monotonic_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  randombytes_buf(buffer.data(), buffer.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : buffer) {
    out += kHex[b >> 4U];
    out += kHex[b & 0x0FU];
  }
  return out;
}

}  // namespace

namespace {

// The TLS certificates of the load balancer's frontends: where tide reads
// them and the file it writes for HAProxy.
std::vector<haproxy::LoadBalancer::Options::Certificate> lb_certificates(
    const LoadBalancerConfig& lb, const std::filesystem::path& state_dir) {
  std::vector<haproxy::LoadBalancer::Options::Certificate> out;
  for (const auto& frontend : lb.frontends) {
    for (std::size_t i = 0; i < frontend.tls.certificates.size(); ++i) {
      const auto& certificate = frontend.tls.certificates[i];
      out.push_back({certificate_file(state_dir, frontend.name, i).string(), certificate.cert,
                     certificate.key, frontend.tls.watch ? frontend.tls.watch_interval_ms : 0});
    }
  }
  return out;
}

std::vector<haproxy::LoadBalancer::Options::AccessLog> lb_access_logs(
    const LoadBalancerConfig& lb, const std::filesystem::path& state_dir) {
  std::vector<haproxy::LoadBalancer::Options::AccessLog> out;
  for (const auto& frontend : lb.frontends) {
    if (frontend.access_log.empty()) continue;
    out.push_back({frontend.name, access_log_socket(state_dir, frontend.name).string(),
                   frontend.access_log == "log" ? std::string() : frontend.access_log});
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : digest) {
    out += kHex[b >> 4U];
    out += kHex[b & 0x0FU];
  }
  return out;
}

namespace {

// Production dependencies of the core: random ids and CSPRNG tokens.
FleetDeps production_deps() {
  FleetDeps deps;
  deps.new_instance_id = [] { return "i-" + random_hex(8); };
  deps.new_activity_id = [] { return "a-" + random_hex(8); };
  deps.new_idempotency_key = [] { return "k-" + random_hex(12); };
  deps.new_action_token = [] { return "h-" + random_hex(16); };
  deps.new_enrollment_token = [] {
    EnrollmentToken token;
    token.token = random_hex(24);
    token.hash = sha256_hex(token.token);
    return token;
  };
  randombytes_buf(&deps.seed, sizeof deps.seed);
  return deps;
}

}  // namespace

Server::Server(uv_loop_t* loop, CoordinatorConfig config, std::filesystem::path binary_dir)
    : m_loop(loop),
      m_config(std::move(config)),
      m_binary_dir(std::move(binary_dir)),
      m_wall_at_start_ms(wall_clock_ms()),
      m_steady_at_start(std::chrono::steady_clock::now()) {}

Server::~Server() = default;

TimeMs Server::wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TimeMs Server::now_ms() const {
  const auto elapsed = std::chrono::steady_clock::now() - m_steady_at_start;
  return m_wall_at_start_ms +
         std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
}

std::string Server::new_rollout_id() {
  return "r-" + random_hex(8);
}

// ---- start-up ---------------------------------------------------------------

void Server::start(std::function<void(tl::expected<void, std::string>)> ready) {
  if (sodium_init() < 0) {
    ready(tl::make_unexpected(std::string("libsodium failed to initialise")));
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(m_config.state_dir, ec);
  if (ec) {
    ready(tl::make_unexpected("cannot create state_dir " + m_config.state_dir.string() + ": " +
                              ec.message()));
    return;
  }
  m_fleet = std::make_unique<Fleet>(production_deps());
  // The agent link opens before the restore so that every launch — those the
  // restore re-issues included — carries the same agent settings (endpoint,
  // key). HELLOs are refused until the fleet is restored; agents retry.
  for (auto step : {&Server::open_store, &Server::start_load_balancer, &Server::start_provider,
                    &Server::start_agent_link}) {
    if (auto ok = (this->*step)(); !ok) {
      ready(tl::make_unexpected(ok.error()));
      return;
    }
  }
  restore([this, ready = std::move(ready)](tl::expected<void, std::string> restored) {
    if (!restored) {
      ready(restored);
      return;
    }
    m_restored = true;
    ready(start_api_and_timers());
  });
}

tl::expected<void, std::string> Server::open_store() {
  auto opened = store::Store::open(m_config.database_path().string());
  if (!opened) return tl::make_unexpected("store: " + opened.error().message);
  m_store = std::make_unique<store::Store>(std::move(*opened));
  return {};
}

tl::expected<void, std::string> Server::start_load_balancer() {
  if (m_config.load_balancer.type == "none") return {};
  if (m_config.load_balancer.backends.empty()) {
    // Nothing to balance: groups can run, but none can name a backend.
    spdlog::warn("load_balancer: no backends configured; HAProxy is not started");
    return {};
  }
  haproxy::LoadBalancer::Options options;
  options.embedded = m_config.load_balancer.embedded;
  options.socket_path = m_config.haproxy_socket();
  options.pid_file = (m_config.state_dir / "haproxy.pid").string();
  options.config_path = (m_config.state_dir / "haproxy.cfg").string();
  options.haproxy_binary = m_config.load_balancer.haproxy_path;
  options.backends = haproxy_backends(m_config.load_balancer);
  options.frontends = haproxy_frontends(m_config.load_balancer, m_config.state_dir);
  options.certificates = lb_certificates(m_config.load_balancer, m_config.state_dir);
  options.access_logs = lb_access_logs(m_config.load_balancer, m_config.state_dir);
  options.reconcile_interval_ms = m_config.load_balancer.reconcile_interval_ms;
  options.keep_running_on_stop = m_config.load_balancer.keep_running_on_stop;
  options.digest = sha256_hex;
  m_lb = std::make_unique<haproxy::LoadBalancer>(m_loop, std::move(options));
  return m_lb->start();
}

void Server::reload(const CoordinatorConfig& fresh) {
  const std::vector<std::string> restart = changes_needing_restart(m_config, fresh);
  std::vector<std::string> applied;
  if (m_lb) {
    auto done = m_lb->apply(haproxy_backends(fresh.load_balancer),
                            haproxy_frontends(fresh.load_balancer, m_config.state_dir),
                            lb_certificates(fresh.load_balancer, m_config.state_dir),
                            lb_access_logs(fresh.load_balancer, m_config.state_dir));
    if (!done) {
      spdlog::error("reload of {} refused: {}; the running configuration stays", fresh.source,
                    done.error());
      return;
    }
    applied = std::move(*done);
    m_config.load_balancer.frontends = fresh.load_balancer.frontends;
    for (auto& backend : m_config.load_balancer.backends) {
      for (const auto& changed : fresh.load_balancer.backends) {
        if (changed.name != backend.name) continue;
        backend.timeout_server_ms = changed.timeout_server_ms;
        backend.timeout_connect_ms = changed.timeout_connect_ms;
        backend.timeout_queue_ms = changed.timeout_queue_ms;
      }
    }
  }
  applied.emplace_back("TLS certificates re-read");
  spdlog::info("reloaded {}: {}", fresh.source, joined(applied));
  if (!restart.empty())
    spdlog::warn("reload of {}: changed but applied only by a restart: {}", fresh.source,
                 joined(restart));
}

tl::expected<void, std::string> Server::start_provider() {
  if (m_config.provider.type == "exec") {
    provider::ExecProviderOptions options;
    options.launch_script = m_config.provider.exec.launch;
    options.terminate_script = m_config.provider.exec.terminate;
    options.list_script = m_config.provider.exec.list;
    options.describe_script = m_config.provider.exec.describe;
    options.launch_timeout_ms = m_config.provider.exec.timeout_ms;
    m_provider = std::make_unique<provider::ExecProvider>(m_loop, options);
    return {};
  }
  provider::LocalProviderOptions options;
  options.state_dir = (m_config.state_dir / "instances").string();
  options.address_prefix = m_config.provider.local.address_prefix;
  m_provider = std::make_unique<provider::LocalProvider>(m_loop, options);
  return {};
}

void Server::restore(std::function<void(tl::expected<void, std::string>)> ready) {
  RestoreInput input;
  // Specs first: instances stored in a hook state need their group's hooks.
  if (auto loaded = load_specs(); !loaded) {
    ready(loaded);
    return;
  }
  for (const auto& [key, hook] : m_specs.hooks) input.hooks.push_back(hook);
  auto configs = m_store->list_launch_configurations();
  auto groups = m_store->list_groups();
  auto instances = m_store->list_instances();
  if (!configs || !groups || !instances) {
    ready(tl::make_unexpected(std::string("store: cannot load the fleet")));
    return;
  }
  input.launch_configurations = std::move(*configs);
  input.groups = std::move(*groups);
  for (auto& instance : *instances) {
    if (instance.state == LifecycleState::Detached) {
      input.detached.push_back(instance.id);
    } else if (!is_terminal(instance.state)) {
      input.instances.push_back(std::move(instance));
    }
  }
  for (const auto& group : input.groups) {
    store::ActivityFilter filter;
    filter.status = ActivityStatus::Running;
    filter.limit = 1000;
    if (auto running = m_store->list_activities(group.name, filter)) {
      for (auto& activity : *running) input.running_activities.push_back(std::move(activity));
    }
  }
  auto rollouts = m_store->active_rollouts();
  if (!rollouts) {
    ready(tl::make_unexpected("store: cannot load the rollouts: " + rollouts.error().message));
    return;
  }
  input.rollouts = std::move(*rollouts);
  adopt_lb_members(std::move(input),
                   [this, ready = std::move(ready)](RestoreInput with_lb) mutable {
                     restore_with_provider(std::move(with_lb), std::move(ready));
                   });
}

// With an adopted HAProxy, what it serves is the fleet's last known
// membership: slots are matched to stored instances by backend and endpoint.
void Server::adopt_lb_members(RestoreInput input, std::function<void(RestoreInput)> next) {
  if (!m_lb || !m_lb->adopted()) return next(std::move(input));
  // Two stored rows can name one endpoint (the provider reuses addresses; a
  // pending row keeps the address its lost process announced): the slot goes
  // to the row likeliest to be what it serves (lb_claim_rank).
  std::map<std::tuple<std::string, std::string, std::uint16_t>, const Instance*> by_endpoint;
  std::unordered_map<std::string, const ScalingGroup*> groups;
  for (const ScalingGroup& group : input.groups) groups.emplace(group.name, &group);
  for (const Instance& instance : input.instances) {
    auto group = groups.find(instance.group);
    if (group == groups.end() || group->second->lb.backend.empty() || instance.address.empty())
      continue;
    const LbBinding& lb = group->second->lb;
    auto [it, added] = by_endpoint.emplace(
        std::make_tuple(lb.backend, instance.address, lb.port != 0 ? lb.port : instance.port),
        &instance);
    if (!added && lb_claim_rank(instance) > lb_claim_rank(*it->second)) it->second = &instance;
  }
  std::map<std::tuple<std::string, std::string, std::uint16_t>, std::string> ids;
  for (const auto& [endpoint, instance] : by_endpoint) ids.emplace(endpoint, instance->id);
  auto resolve = [ids = std::move(ids)](const std::string& backend, const std::string& address,
                                        std::uint16_t port) -> std::optional<std::string> {
    auto it = ids.find(std::make_tuple(backend, address, port));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
  m_lb->driver().adopt_members(
      resolve,
      [input = std::move(input), next = std::move(next)](
          tl::expected<std::vector<haproxy::AdoptedMember>, haproxy::DriverError> adopted) mutable {
        if (!adopted) {
          // Not fatal: the fleet registers its in-service instances again.
          spdlog::warn("cannot read the adopted HAProxy's membership: {}", adopted.error().detail);
        } else {
          for (const auto& member : *adopted) {
            input.lb.push_back(LbMember{member.backend, member.instance_id, member.in_rotation});
          }
          spdlog::info("the adopted HAProxy serves {} known instances", adopted->size());
        }
        next(std::move(input));
      });
}

void Server::restore_with_provider(RestoreInput input,
                                   std::function<void(tl::expected<void, std::string>)> ready) {
  m_provider->list(
      [this, input = std::move(input), ready = std::move(ready)](
          tl::expected<std::vector<provider::ProviderInstance>, provider::ProviderError>
              listed) mutable {
        if (!listed) {
          ready(tl::make_unexpected("provider list failed: " + listed.error().message));
          return;
        }
        for (const auto& p : *listed) {
          if (p.state == provider::InstanceState::Gone) continue;
          ProviderInstance seen;
          seen.provider_id = p.provider_id;
          seen.idempotency_key = p.idempotency_key;
          seen.instance_id = p.instance_id;
          seen.tagged_by_tide = !p.instance_id.empty();
          seen.address = p.address;
          seen.port = p.port;
          input.provider.push_back(std::move(seen));
        }
        spdlog::info("restoring {} groups, {} instances; the provider runs {}", input.groups.size(),
                     input.instances.size(), input.provider.size());
        std::vector<Command> out;
        m_fleet->restore(std::move(input), now_ms(), out);
        execute(std::move(out));
        if (m_lb) m_lb->fleet_restored();
        ready({});
      });
}

tl::expected<void, std::string> Server::start_agent_link() {
  GatewayConfig gateway;
  gateway.router.endpoint = m_config.agents.listen;
  gateway.report_interval_ms = m_config.agents.report_interval_ms;
  gateway.heartbeat_interval_ms = m_config.agents.heartbeat_interval_ms;
  gateway.liveness = m_config.agents.liveness;
  if (m_config.agents.curve) {
    auto keys = transport::load_or_create_keypair_file(m_config.server_key_path().string());
    if (!keys) return tl::make_unexpected("coordinator key: " + keys.error().detail);
    gateway.router.curve_server_secret_z85 = keys->secret_z85;
    m_server_public_key = keys->public_z85;
  }
  m_gateway = std::make_unique<AgentGateway>(m_loop, gateway, *this);
  auto endpoint = m_gateway->start();
  if (!endpoint) return tl::make_unexpected("agent link: " + endpoint.error().detail);
  // Agents are told the advertised endpoint; with a wildcard bind, the real port.
  m_agent_endpoint = m_config.agents.advertise.empty() ? *endpoint : m_config.agents.advertise;
  if (m_agent_endpoint.find("0.0.0.0") != std::string::npos) {
    m_agent_endpoint.replace(m_agent_endpoint.find("0.0.0.0"), 7, "127.0.0.1");
  }
  spdlog::info("agent link on {} (CURVE {})", *endpoint, m_config.agents.curve ? "on" : "off");
  return {};
}

tl::expected<void, std::string> Server::start_api_and_timers() {
  HttpApiConfig api;
  api.address = m_config.api.listen_address;
  api.port = m_config.api.listen_port;
  api.token = m_config.api.token;
  api.console = m_config.api.console;
  api.console_dir = m_config.api.console_dir.empty()
                        ? (m_binary_dir / ".." / "share" / "tide" / "console").lexically_normal()
                        : m_config.api.console_dir;
  m_api = std::make_unique<HttpApi>(m_loop, api);
  m_changes = std::make_unique<ChangeFeed>(
      m_loop, [this](const std::string& data) { m_api->publish("change", data); },
      [this] { return m_api->event_streams() != 0; });
  m_api->after_change([this](const ApiRequest& request) { note_change(request); });
  m_notifier = std::make_unique<notify::Notifier>(m_loop, notify::NotifierConfig{},
                                                  static_cast<std::uint64_t>(now_ms()));
  register_routes();
  register_rollout_routes();
  register_spec_routes();
  register_apply_routes();
  register_cost_routes();
  register_history_routes();
  register_console_routes();
  auto port = m_api->start();
  if (!port) return tl::make_unexpected("api: " + port.error());
  m_api_port = *port;
  spdlog::info("admin API on http://{}:{}", m_config.api.listen_address, m_api_port);

  m_tick = new uv_timer_t;
  uv_timer_init(m_loop, m_tick);
  m_tick->data = this;
  uv_timer_start(
      m_tick,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Server*>(timer->data);
        self->handle(Tick{});
        self->automation_tick();
      },
      m_config.tick_interval_ms, m_config.tick_interval_ms);
  if (m_lb) {
    m_traffic = new uv_timer_t;
    uv_timer_init(m_loop, m_traffic);
    m_traffic->data = this;
    uv_timer_start(
        m_traffic, [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->sample_traffic(); },
        kTrafficSampleMs, kTrafficSampleMs);
  }
  if (!m_config.prometheus.url.empty()) {
    m_prometheus = std::make_unique<prometheus::PrometheusClient>(
        m_loop, prometheus::PrometheusClientConfig{m_config.prometheus.url,
                                                   m_config.prometheus.bearer_token,
                                                   m_config.prometheus.timeout_ms});
    m_prometheus_poll = new uv_timer_t;
    uv_timer_init(m_loop, m_prometheus_poll);
    m_prometheus_poll->data = this;
    uv_timer_start(
        m_prometheus_poll,
        [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->poll_metric_queries(); },
        m_config.prometheus.interval_ms, m_config.prometheus.interval_ms);
    spdlog::info("Prometheus metric source {} (every {} ms, time-out {} ms{})",
                 m_config.prometheus.url, m_config.prometheus.interval_ms,
                 m_config.prometheus.timeout_ms,
                 m_config.prometheus.bearer_token.empty() ? "" : ", bearer token");
  }
  start_history();
  m_history = new uv_timer_t;
  uv_timer_init(m_loop, m_history);
  m_history->data = this;
  uv_timer_start(
      m_history, [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->sample_history(); },
      m_config.history.interval_ms, m_config.history.interval_ms);
  start_provider_checks();
  return {};
}

// The provider's own word on what runs: every instance tide believes alive
// that the provider no longer lists (or lists as gone) vanished. Providers
// that watch their instances (set_exit_handler) report most exits sooner;
// this catches the rest (an exec provider, a VM deleted by hand).
void Server::start_provider_checks() {
  m_provider->set_exit_handler([this](provider::InstanceExit exit) {
    if (m_stopping || exit.instance_id.empty()) return;
    // The provider logged the exit; the warning comes with the core's verdict
    // (terminate_unexpectedly, or a failed launch).
    spdlog::debug("instance {} ({}): {}", exit.instance_id, exit.provider_id, exit.message);
    handle(InstanceVanished{exit.instance_id, exit.message});
  });
  if (m_config.provider.check_interval_ms == 0) return;
  m_provider_check = new uv_timer_t;
  uv_timer_init(m_loop, m_provider_check);
  m_provider_check->data = this;
  uv_timer_start(
      m_provider_check,
      [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->check_provider(); },
      m_config.provider.check_interval_ms, m_config.provider.check_interval_ms);
}

void Server::check_provider() {
  if (m_stopping || m_provider_check_running) return;
  m_provider_check_running = true;
  const TimeMs asked_ms = now_ms();
  m_provider->list(
      [this, asked_ms](
          tl::expected<std::vector<provider::ProviderInstance>, provider::ProviderError> listed) {
        m_provider_check_running = false;
        if (m_stopping) return;
        if (!listed) {
          if (!m_provider_check_failing) {
            spdlog::error(
                "provider check failed: {}; vanished instances go unnoticed until it works again",
                listed.error().message);
          }
          m_provider_check_failing = true;
          return;
        }
        if (m_provider_check_failing) spdlog::info("provider check works again");
        m_provider_check_failing = false;
        std::unordered_map<std::string, const provider::ProviderInstance*> running;
        for (const auto& p : *listed) {
          if (p.state != provider::InstanceState::Gone) running.emplace(p.provider_id, &p);
        }
        std::vector<std::pair<std::string, std::string>> gone;
        for (const ScalingGroup* group : m_fleet->groups()) {
          for (const Instance* instance : m_fleet->instances_of(group->name)) {
            // Only what the provider confirmed before the list was asked for.
            if (instance->origin != InstanceOrigin::Launched || instance->provider_id.empty() ||
                instance->launched_ms == 0 || instance->launched_ms >= asked_ms ||
                instance->state == LifecycleState::Pending ||
                running.contains(instance->provider_id)) {
              continue;
            }
            gone.emplace_back(instance->id, "the provider no longer runs " + instance->provider_id);
          }
        }
        for (const auto& [id, message] : gone) handle(InstanceVanished{id, message});
      });
}

// The load balancer's per-server figures, every second: requests (sessions
// in TCP mode), 5xx answers, failed connections and responses, the queue,
// open sessions and HAProxy's mean response time. They feed a canary's
// verdict (the fleet) and the load balancer's metrics (record_lb_metrics). A
// sample that fails (HAProxy reloading or down) is skipped: a canary waits
// for its minimum of requests, a policy sees missing data for that second.
void Server::sample_traffic() {
  if (m_stopping || !m_lb || m_traffic_sampling) return;
  m_traffic_sampling = true;
  m_lb->sample_traffic(
      [this](tl::expected<std::vector<haproxy::ServerTraffic>, std::string> sample) {
        m_traffic_sampling = false;
        if (m_stopping) return;
        if (!sample) {
          spdlog::debug("load balancer traffic sample skipped: {}", sample.error());
          return;
        }
        LbTrafficSample event;
        event.servers.reserve(sample->size());
        for (const haproxy::ServerTraffic& server : *sample) {
          InstanceTraffic traffic;
          traffic.instance_id = server.instance_id;
          traffic.cumulative.requests =
              server.requests_total != 0 ? server.requests_total : server.sessions_total;
          traffic.cumulative.errors_5xx = server.responses_5xx;
          traffic.cumulative.connection_errors = server.connection_errors + server.response_errors;
          traffic.cumulative.mean_response_ms = server.mean_response_ms;
          traffic.queue = server.queue;
          traffic.sessions = server.current_sessions;
          event.servers.push_back(std::move(traffic));
        }
        record_lb_metrics(event);
        if (m_fleet->wants_traffic_samples()) handle(std::move(event));
      });
}

// The load balancer's metrics of the instances whose metrics count: in
// service, ready, healthy, warmed up (metrics_eligible) and in rotation.
void Server::record_lb_metrics(const LbTrafficSample& sample) {
  const TimeMs now = now_ms();
  for (const LbInstanceValues& values : m_lb_rates.update(sample.servers, now)) {
    const Instance* instance = m_fleet->instance(values.instance_id);
    if (instance == nullptr || !instance->runtime.in_lb) continue;
    const ScalingGroup* group = m_fleet->group(instance->group);
    if (group == nullptr || !metrics_eligible(*instance, *group, now)) continue;
    std::vector<MetricSample> samples{{kMetricRequestsPerInstance, values.requests_per_s},
                                      {kMetricHttp5xxRate, values.errors_5xx_per_s},
                                      {kMetricQueue, values.queue},
                                      {kMetricSessionsPerInstance, values.sessions}};
    if (values.response_time_ms) samples.push_back({kMetricResponseTime, *values.response_time_ms});
    m_metrics.record(instance->group, instance->id, now, samples);
  }
}

void Server::stop(std::function<void()> done) {
  if (m_stopping) return;
  m_stopping = true;
  if (m_api) m_api->stop();
  if (m_gateway) m_gateway->stop("coordinator stopping");
  for (uv_timer_t** timer : {&m_tick, &m_traffic, &m_provider_check, &m_prometheus_poll, &m_history}) {
    if (*timer == nullptr) continue;
    uv_timer_stop(*timer);
    uv_close(reinterpret_cast<uv_handle_t*>(*timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    *timer = nullptr;
  }
  if (m_notifier) m_notifier->close();
  if (m_prometheus) m_prometheus->close();
  if (m_lb) {
    m_lb->stop(std::move(done));
  } else {
    done();
  }
}

// ---- the agent link -------------------------------------------------------------

bool Server::allow_agent_key(std::string_view agent_key) {
  // A key bound to an instance, or any key while some instance waits for its
  // first HELLO (its enrollment token then decides), or while the fleet is
  // being restored (the HELLO is refused, and checked against the binding
  // once the fleet is known).
  if (!m_restored) return true;
  if (m_bound_keys.contains(std::string(agent_key))) return true;
  return !m_open_enrollments.empty();
}

HelloVerdict Server::on_hello(const protocol::Hello& hello, std::string_view agent_key) {
  if (!m_restored) {
    return {false, protocol::ErrorCode::UnknownInstance,
            "the coordinator is starting; say HELLO again"};
  }
  const Instance* instance = m_fleet->instance(hello.instance_id);
  if (instance == nullptr) {
    return {false, protocol::ErrorCode::UnknownInstance,
            "unknown instance '" + hello.instance_id + "'"};
  }
  if (!instance->agent_key.empty()) {
    if (instance->agent_key != agent_key) {
      return {false, protocol::ErrorCode::Unauthorized,
              "this instance is bound to another agent key"};
    }
  } else if (instance->enrollment_token_hash.empty() ||
             sha256_hex(hello.enrollment_token) != instance->enrollment_token_hash) {
    return {false, protocol::ErrorCode::Unauthorized, "wrong or used enrollment token"};
  }
  AgentHello event;
  event.instance_id = hello.instance_id;
  event.agent_key = std::string(agent_key);
  event.address = hello.service_address;
  event.port = hello.service_port;
  handle(event);
  return {true, {}, {}};
}

void Server::on_report(const std::string& instance_id, const protocol::Report& report) {
  const Instance* before = m_fleet->instance(instance_id);
  const bool was_in_lb = before != nullptr && before->runtime.in_lb;
  const std::uint64_t received_us = monotonic_us();  // before the LB command goes out
  AgentReport event;
  event.instance_id = instance_id;
  event.ready = report.ready && !report.draining;
  event.healthy = report.healthy;
  event.health_reason = report.health_reason;
  event.draining = report.draining;
  handle(event);
  record_metrics(instance_id, report);
  if (m_fleet->instance(instance_id) != nullptr) m_last_reports[instance_id] = {now_ms(), report};
  const Instance* after = m_fleet->instance(instance_id);
  if (after != nullptr && after->runtime.in_lb && !was_in_lb) {
    m_rotation_started_us[instance_id] = received_us;
  }
}

void Server::on_lost(const std::string& instance_id, std::string_view reason) {
  handle(AgentLost{instance_id, std::string(reason)});
  describe_at_provider(instance_id);
}

// An agent was lost: is its instance still running? The provider is asked
// about that one instance at once, so a server that is gone leaves as
// vanished now, not at the next provider check (a provider whose exit
// reports missed it, an exec provider, a VM deleted by hand).
void Server::describe_at_provider(const std::string& instance_id) {
  const Instance* instance = m_fleet->instance(instance_id);
  if (instance == nullptr || instance->origin != InstanceOrigin::Launched ||
      instance->provider_id.empty() || instance->state == LifecycleState::Pending) {
    return;
  }
  const TimeMs asked_ms = now_ms();
  m_provider->describe(
      instance->provider_id,
      [this, instance_id, provider_id = instance->provider_id,
       asked_ms](tl::expected<provider::ProviderInstance, provider::ProviderError> described) {
        if (m_stopping) return;
        if (!described) {
          spdlog::error("provider: cannot describe {} (instance {}, its agent is lost): {}",
                        provider_id, instance_id, described.error().message);
          return;
        }
        if (described->state != provider::InstanceState::Gone) return;
        // Still the same launch, confirmed before the question was asked.
        const Instance* current = m_fleet->instance(instance_id);
        if (current == nullptr || current->provider_id != provider_id ||
            current->launched_ms >= asked_ms)
          return;
        handle(InstanceVanished{instance_id, described->message.empty()
                                                 ? "the provider no longer runs " + provider_id
                                                 : described->message});
      });
}

void Server::on_ack(const std::string& instance_id, std::uint64_t command_id) {
  spdlog::debug("agent {} acknowledged command {}", instance_id, command_id);
}

void Server::on_hook_result(const std::string& instance_id, const protocol::HookResult& result) {
  spdlog::info("agent {}: hook script {} exited {}{}", instance_id, result.hook_name,
               result.exit_status, result.timed_out ? " (timed out)" : "");
  std::vector<Command> out;
  auto done = m_fleet->on_hook_script_result(instance_id, result.hook_name, result.exit_status,
                                             result.timed_out, now_ms(), out);
  if (!done) spdlog::warn("agent {}: hook result not taken: {}", instance_id, done.error().message);
  execute(std::move(out));
}

// ---- running the core's commands ----------------------------------------------

void Server::handle(const Event& event) {
  if (m_stopping) return;
  std::vector<Command> out;
  m_fleet->handle(event, now_ms(), out);
  execute(std::move(out));
}

void Server::execute(std::vector<Command> commands) {
  for (const auto& command : commands) {
    note_change(command);
    if (!execute_one(command)) {
      // Persist before act: an action whose record could not be written is
      // not taken. The next tick or restart reconciles.
      spdlog::error("stopping this batch: a state change could not be written");
      return;
    }
  }
}

void Server::set_agent_access(const SetAgentAccess& access) {
  auto& known = m_agent_access[access.instance_id];
  if (!known.empty()) {
    auto it = m_bound_keys.find(known);
    if (it != m_bound_keys.end() && --it->second == 0) m_bound_keys.erase(it);
    known.clear();
  }
  if (access.revoke) {
    m_agent_access.erase(access.instance_id);
    m_open_enrollments.erase(access.instance_id);
    return;
  }
  if (!access.agent_key.empty()) {
    known = access.agent_key;
    ++m_bound_keys[known];
  }
  if (access.enrollment_open) {
    m_open_enrollments.insert(access.instance_id);
  } else {
    m_open_enrollments.erase(access.instance_id);
  }
}

bool Server::execute_one(const Command& command) {
  return std::visit(
      [this](const auto& c) -> bool {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PersistInstance>) {
          if (auto ok = m_store->upsert_instance(c.instance); !ok) {
            ++m_counters.store_failures;
            spdlog::error("store: {}", ok.error().message);
            return false;
          }
          const LifecycleState state = c.instance.state;
          log_instance_health(c.instance);
          if (state == LifecycleState::Terminated || state == LifecycleState::LaunchFailed ||
              state == LifecycleState::Detached) {
            m_metrics.forget_instance(c.instance.group, c.instance.id);
            m_last_reports.erase(c.instance.id);
          }
        } else if constexpr (std::is_same_v<T, PersistGroup>) {
          auto ok = m_store->update_group(c.group);
          if (!ok && ok.error().kind == store::StoreError::Kind::NotFound)
            ok = m_store->insert_group(c.group);
          if (!ok) {
            ++m_counters.store_failures;
            spdlog::error("store: {}", ok.error().message);
            return false;
          }
        } else if constexpr (std::is_same_v<T, PersistRollout>) {
          if (auto ok = m_store->put_rollout(c.rollout); !ok) {
            ++m_counters.store_failures;
            spdlog::error("store: {}", ok.error().message);
            return false;
          }
        } else if constexpr (std::is_same_v<T, RecordActivity>) {
          log_activity(c.activity, true);
          ++m_counters.activities[{c.activity.type, c.activity.status}];
          if (auto ok = m_store->insert_activity(c.activity); !ok) {
            ++m_counters.store_failures;
            spdlog::error("store: {}", ok.error().message);
          }
          notify_activity(c.activity);
        } else if constexpr (std::is_same_v<T, UpdateActivity>) {
          log_activity(c.activity, false);
          if (c.activity.status != ActivityStatus::Running)
            ++m_counters.activities[{c.activity.type, c.activity.status}];
          auto ok =
              m_store->update_activity_status(c.activity.id, c.activity.status, c.activity.end_ms);
          for (const auto& entry : c.activity.instances) {
            if (ok) ok = m_store->upsert_activity_instance(c.activity.id, entry);
          }
          if (!ok) {
            ++m_counters.store_failures;
            spdlog::error("store: {}", ok.error().message);
          }
          notify_activity(c.activity);
        } else if constexpr (std::is_same_v<T, Launch>) {
          launch(c);
        } else if constexpr (std::is_same_v<T, Terminate>) {
          terminate(c);
        } else if constexpr (std::is_same_v<T, LbRegister>) {
          lb_register(c);
        } else if constexpr (std::is_same_v<T, LbDrain>) {
          lb_drain(c);
        } else if constexpr (std::is_same_v<T, LbRemove>) {
          lb_remove(c);
        } else if constexpr (std::is_same_v<T, SendDrain>) {
          (void)m_gateway->send_command(c.instance_id, protocol::Drain{0, c.timeout_ms});
        } else if constexpr (std::is_same_v<T, RunHook>) {
          protocol::HookRun run;
          run.hook_name = c.script;
          run.transition = std::string(to_string(c.transition));
          run.timeout_ms = static_cast<std::uint32_t>(
              std::min<std::int64_t>(c.timeout_ms, protocol::kMaxHookTimeoutMs));
          if (!m_gateway->send_command(c.instance_id, run)) {
            spdlog::warn(
                "lifecycle hook {} of {}: agent not connected; the script runs when it says HELLO",
                c.hook_name, c.instance_id);
          }
        } else if constexpr (std::is_same_v<T, NotifyHookTimeout>) {
          spdlog::warn("lifecycle hook {} of {} timed out; default result {} applied",
                       c.timeout.hook_name, c.timeout.instance_id,
                       to_string(c.timeout.default_result));
          notify_hook_timeout(c.timeout);
        } else if constexpr (std::is_same_v<T, NotifyRollout>) {
          notify_rollout(c.notice);
        } else if constexpr (std::is_same_v<T, SendUndrain>) {
          (void)m_gateway->send_command(c.instance_id, protocol::Undrain{0});
        } else if constexpr (std::is_same_v<T, SetAgentAccess>) {
          set_agent_access(c);
        } else {
          static_assert(sizeof(T) == 0, "a Command alternative has no shell action");
        }
        return true;
      },
      command);
}

void Server::log_instance_health(const Instance& instance) {
  const LifecycleState state = instance.state;
  if (state == LifecycleState::Terminated || state == LifecycleState::LaunchFailed ||
      state == LifecycleState::Detached) {
    m_logged_unhealthy.erase(instance.id);
    return;
  }
  const bool logged = m_logged_unhealthy.contains(instance.id);
  if (instance.health == Health::Unhealthy && !logged) {
    m_logged_unhealthy.insert(instance.id);
    spdlog::warn("instance {} (group {}, {}) is unhealthy: {}", instance.id, instance.group,
                 to_string(state), instance.health_reason);
  } else if (instance.health == Health::Healthy && logged) {
    m_logged_unhealthy.erase(instance.id);
    spdlog::info("instance {} (group {}, {}) is healthy again", instance.id, instance.group,
                 to_string(state));
  }
}

// One line when an activity starts and one when it ends, at the level an
// operator filtering on warnings needs: failures are errors; fail-static, a
// partial success and an instance that vanished (unless it was already
// reported unhealthy) are warnings.
void Server::log_activity(const Activity& activity, bool started) {
  if (!started && activity.status == ActivityStatus::Running) return;  // progress, not a change
  auto level = spdlog::level::info;
  switch (activity.status) {
    case ActivityStatus::Failed:
      level = spdlog::level::err;
      break;
    case ActivityStatus::PartiallySuccessful:
      level = spdlog::level::warn;
      break;
    case ActivityStatus::Running:
      if (activity.type == ActivityType::FailStatic) level = spdlog::level::warn;
      break;
    case ActivityStatus::Successful:
      if (activity.type == ActivityType::TerminateUnexpectedly &&
          std::any_of(activity.instances.begin(), activity.instances.end(),
                      [&](const ActivityInstance& i) {
                        return !m_logged_unhealthy.contains(i.instance_id);
                      })) {
        level = spdlog::level::warn;
      }
      break;
    case ActivityStatus::Cancelled:
      break;
  }
  std::string failures;
  if (level >= spdlog::level::warn && !started) {
    for (const ActivityInstance& i : activity.instances) {
      if (!i.ok && !i.message.empty()) failures += "; " + i.instance_id + ": " + i.message;
    }
  }
  spdlog::log(level, "activity {} {} {} [{}]: {}{}", activity.id, activity.group,
              to_string(activity.type), to_string(activity.status), activity.cause, failures);
}

void Server::launch(const Launch& command) {
  auto config = m_store->get_launch_configuration(command.launch_configuration_id,
                                                  command.launch_configuration_version);
  if (!config) {
    handle(LaunchFailed{command.instance_id,
                        "launch configuration " + command.launch_configuration_id + " v" +
                            std::to_string(command.launch_configuration_version) + ": " +
                            config.error().message});
    return;
  }
  provider::LaunchRequest request;
  request.instance_id = command.instance_id;
  request.group = command.group;
  request.idempotency_key = command.idempotency_key;
  request.launch.command = config->command;
  request.launch.port = config->port;
  request.launch.env = config->env;
  request.launch.env_files = config->env_files;
  std::filesystem::path agent = m_config.provider.local.agent_path;
  if (agent.empty()) agent = m_binary_dir / "tide-agent";
  request.agent.agent_path = agent.string();
  request.agent.coordinator_endpoint = m_agent_endpoint;
  request.agent.coordinator_public_key = m_server_public_key;
  request.agent.enrollment_token = command.enrollment_token;
  request.agent.readiness_path = config->agent.readiness_path;
  request.agent.readiness_period_ms = config->agent.readiness_period_ms;
  request.agent.log_level = m_config.provider.local.agent_log_level;
  const std::string id = command.instance_id;
  m_provider->launch(
      std::move(request),
      [this, id](tl::expected<provider::LaunchResult, provider::ProviderError> result) {
        if (!result) {
          handle(LaunchFailed{id, result.error().message});
          return;
        }
        if (result->existing) {
          // A launch re-issued after a restart found the
          // instance already running: its agent holds the
          // enrollment token of the first attempt, which only
          // the lost coordinator knew. It can never enroll, so
          // replace it rather than wait for the boot timeout.
          m_provider->terminate(result->provider_id, 0,
                                [this, id](tl::expected<void, provider::ProviderError>) {
                                  handle(LaunchFailed{id,
                                                      "the launch had already happened before a "
                                                      "coordinator restart and its agent cannot "
                                                      "enroll; replaced"});
                                });
          return;
        }
        handle(LaunchSucceeded{id, result->provider_id, result->address, result->port});
      });
}

void Server::terminate(const Terminate& command) {
  const std::string id = command.instance_id;
  if (command.origin == InstanceOrigin::Attached || command.provider_id.empty()) {
    // Not tide's to stop (attached), or never launched: nothing to call.
    handle(TerminateCompleted{id});
    return;
  }
  m_provider->terminate(command.provider_id, command.grace_ms,
                        [this, id](tl::expected<void, provider::ProviderError> result) {
                          if (!result) {
                            spdlog::error("terminate {}: {}", id, result.error().message);
                            // Left in terminating; the next restart's reconciliation finds it.
                            return;
                          }
                          handle(TerminateCompleted{id});
                        });
}

void Server::lb_register(const LbRegister& command) {
  if (!m_lb) return;
  ++m_counters.lb_operations;
  const std::string id = command.instance_id;
  const std::string backend = command.backend;
  m_lb->driver().register_instance(
      command.backend, id, command.address, command.port,
      [this, id, backend](tl::expected<haproxy::OpResult, haproxy::DriverError> result) {
        if (!result) {
          ++m_counters.lb_failures;
          const haproxy::DriverError& error = result.error();
          spdlog::error("LB register {}: {}", id, error.detail);
          // A connection that failed or timed out is
          // repaired by the periodic reconcile (the
          // driver still wants the member); a refusal is
          // for good.
          const bool transient = error.kind == haproxy::DriverError::Kind::Api &&
                                 error.api_kind != haproxy::ApiError::Kind::Rejected;
          if (!transient) {
            m_lb->driver().remove_instance(backend, id, [](const auto&) {});
            handle(LbRegisterFailed{id, error.detail});
          }
          return;
        }
        m_counters.lb_latency.record_us(result->elapsed_us);
        if (auto it = m_rotation_started_us.find(id); it != m_rotation_started_us.end()) {
          m_counters.report_to_lb_latency.record_us(monotonic_us() - it->second);
          m_rotation_started_us.erase(it);
        }
        spdlog::info("LB: {} in rotation ({}/{}, {} us)", id, result->backend, result->server,
                     result->elapsed_us);
      });
}

void Server::lb_drain(const LbDrain& command) {
  const std::string id = command.instance_id;
  if (!m_lb) {
    handle(LbDrained{id});
    return;
  }
  ++m_counters.lb_operations;
  // 0 would mean the driver's default: the shortest deadline instead.
  const std::uint64_t timeout = std::max<std::uint64_t>(command.timeout_ms, 1);
  m_lb->driver().drain_instance(
      command.backend, id, timeout,
      [this, id](tl::expected<haproxy::OpResult, haproxy::DriverError> result) {
        if (!result) {
          ++m_counters.lb_failures;
          spdlog::error("LB drain {}: {}", id, result.error().detail);
        } else {
          spdlog::info("LB: {} drained{} ({} us)", id, result->forced ? " (forced)" : "",
                       result->elapsed_us);
        }
        // Drained or not, the slot is out of rotation: let the lifecycle go on.
        handle(LbDrained{id});
      });
}

void Server::lb_remove(const LbRemove& command) {
  if (!m_lb) return;
  ++m_counters.lb_operations;
  const std::string id = command.instance_id;
  m_lb->driver().remove_instance(
      command.backend, id,
      [this, id](tl::expected<haproxy::OpResult, haproxy::DriverError> result) {
        if (!result) {
          // The driver no longer wants it: the periodic reconcile takes the slot out.
          ++m_counters.lb_failures;
          spdlog::error("LB remove {}: {}", id, result.error().detail);
        } else if (result->slot != 0) {
          spdlog::info("LB: {} removed ({}/{}, {} us)", id, result->backend, result->server,
                       result->elapsed_us);
        }
      });
}

}  // namespace tide::coordinator
