#include "agent/io/agent.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/io/instance_scan.hpp"
#include "agent/io/process.hpp"
#include "common/files/private_files.hpp"
#include "common/systemd/sd_notify.hpp"
#include "protocol/transport/curve.hpp"

namespace tide::agent {
namespace {

std::vector<ProbeSpec> probe_specs(const AgentConfig& config) {
  std::vector<ProbeSpec> specs;
  for (const auto& p : config.probes) {
    specs.push_back(ProbeSpec{p.name, p.kind, p.role, p.success_threshold, p.failure_threshold});
  }
  return specs;
}

// Reads a small /proc or /sys file; nullopt when absent or unreadable.
std::optional<std::string> read_text(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf{};
  while (out.size() < 256 * 1024) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

template <typename T>
void close_and_delete(T*& handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
  handle = nullptr;
}

HostUnits host_units() {
  HostUnits units;
  units.online_cpus = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  units.clock_ticks_per_s = static_cast<std::uint64_t>(std::max(1L, ::sysconf(_SC_CLK_TCK)));
  units.page_size = static_cast<std::uint64_t>(std::max(1L, ::sysconf(_SC_PAGESIZE)));
  return units;
}

std::string hostname() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) return {};
  return std::string(host.data());
}

}  // namespace

Agent::Agent(uv_loop_t* loop, AgentConfig config)
    : m_loop(loop),
      m_config(std::move(config)),
      m_readiness(probe_specs(m_config), m_config.notify_readiness),
      m_session(LinkTiming{m_config.backoff_base_ms, m_config.backoff_max_ms, m_config.welcome_timeout_ms}),
      m_sampler(m_config.metrics_include_loopback, host_units()),
      m_rng(std::random_device{}()),
      m_context(1) {}

Agent::~Agent() {
  *m_alive = false;
  m_probes.clear();
  if (m_dealer) m_dealer->close();
}

std::uint64_t Agent::now_ms() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000u;
}

double Agent::random_unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(m_rng); }

tl::expected<void, std::string> Agent::start() {
  // Identity: a CURVE key pair kept in the state directory across restarts.
  if (!m_config.coordinator_public_key.empty()) {
    // It holds the secret key: 0700 whatever the umask; a looser existing
    // directory is tightened.
    if (auto dir = files::ensure_private_dir(m_config.state_dir, files::kPrivateDir, files::kPrivateDir); !dir) {
      return tl::make_unexpected("state_dir: " + dir.error());
    }
    const auto key_file = m_config.state_dir / "agent.key";
    auto keys = transport::load_or_create_keypair_file(key_file);
    if (!keys) return tl::make_unexpected(key_file.string() + ": " + keys.error().detail);
    if (!transport::is_valid_z85_key(m_config.coordinator_public_key)) {
      return tl::make_unexpected("coordinator public key is not a valid Z85 CURVE key");
    }
    m_curve = transport::DealerCurve{m_config.coordinator_public_key, *keys};
    spdlog::info("identity: instance {} public key {}", m_config.instance_id, keys->public_z85);
  } else {
    spdlog::warn("no coordinator public key configured: the link is NOT encrypted (tests only)");
  }

  // The sd_notify socket the application may talk to.
  if (!m_config.notify_socket.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto& path = m_config.notify_socket;
    if (path.size() >= sizeof addr.sun_path) return tl::make_unexpected("notify socket path too long: " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    const bool abstract = path.front() == '@';
    if (abstract) addr.sun_path[0] = '\0';
    else ::unlink(path.c_str());
    m_notify_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m_notify_fd < 0) return tl::make_unexpected(std::string("notify socket: ") + std::strerror(errno));
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    if (::bind(m_notify_fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return tl::make_unexpected("notify socket " + path + ": " + std::strerror(errno));
    }
    if (!abstract) ::chmod(path.c_str(), 0660);
    m_notify_poll = new uv_poll_t;
    uv_poll_init(m_loop, m_notify_poll, m_notify_fd);
    m_notify_poll->data = this;
    uv_poll_start(m_notify_poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
      if (status == 0) static_cast<Agent*>(h->data)->on_notify_readable();
    });
    spdlog::info("notify socket {}", path);
  }

  for (std::size_t i = 0; i < m_config.probes.size(); ++i) {
    const auto& probe = m_config.probes[i];
    const ProbeTiming timing = probe_timing(m_config, probe);
    spdlog::info("{} {} ({}): every {} ms until it first passes, then every {} ms",
                 probe.role == SourceRole::Readiness ? "readiness probe" : "health check", probe.name,
                 protocol::to_string(probe.kind), std::min(timing.startup_period_ms, timing.period_ms),
                 timing.period_ms);
    m_probes.push_back(std::make_unique<ProbeRunner>(
        m_loop, probe, timing, [this, i](const ProbeOutcome& o) { return on_probe(i, o); }));
    m_probes.back()->start();
  }

  auto on_signal = [](uv_signal_t* h, int signum) {
    static_cast<Agent*>(h->data)->stop(std::string("signal ") + ::strsignal(signum));
  };
  m_sigterm = new uv_signal_t;
  m_sigint = new uv_signal_t;
  uv_signal_init(m_loop, m_sigterm);
  uv_signal_init(m_loop, m_sigint);
  m_sigterm->data = this;
  m_sigint->data = this;
  uv_signal_start(m_sigterm, on_signal, SIGTERM);
  uv_signal_start(m_sigint, on_signal, SIGINT);

  m_link_timer = new uv_timer_t;
  uv_timer_init(m_loop, m_link_timer);
  m_link_timer->data = this;

  // systemd: Type=notify and the watchdog, one datagram each.
  sd_notify("READY=1");
  if (const char* usec = std::getenv("WATCHDOG_USEC")) {
    const char* pid = std::getenv("WATCHDOG_PID");
    const long interval_us = std::strtol(usec, nullptr, 10);
    if (interval_us > 0 && (pid == nullptr || std::strtol(pid, nullptr, 10) == ::getpid())) {
      m_watchdog_timer = new uv_timer_t;
      uv_timer_init(m_loop, m_watchdog_timer);
      m_watchdog_timer->data = this;
      const auto half_ms = static_cast<std::uint64_t>(interval_us) / 2000u;
      uv_timer_start(m_watchdog_timer, [](uv_timer_t* t) { static_cast<Agent*>(t->data)->sd_notify("WATCHDOG=1"); },
                     half_ms, std::max<std::uint64_t>(1, half_ms));
    }
  }

  spdlog::info("tide-agent {} instance {} coordinator {} ({} probes{}, cpu and memory of the {})", kAgentVersion,
               m_config.instance_id, m_config.coordinator_endpoint, m_probes.size(),
               m_config.notify_readiness ? ", notify" : "", to_string(m_config.metrics_scope));
  if (m_config.metrics_scope == MetricsScope::Session && ::getsid(0) == ::getpid()) {
    spdlog::warn("metrics.scope is session but this agent leads its own session: there is no application "
                 "beside it to measure, cpu and memory will read 0");
  }
  pump_link();
  return {};
}

void Agent::sd_notify(const char* text) {
  if (auto sent = systemd::notify(text); !sent) spdlog::debug("{}", sent.error());
}

void Agent::stop(const std::string& reason) {
  if (m_stopping) return;
  m_stopping = true;
  spdlog::info("stopping: {}", reason);
  sd_notify("STOPPING=1");
  if (m_dealer && m_session.state() == LinkState::Established) (void)send(protocol::Goodbye{reason});
  close_socket();
  *m_alive = false;
  m_probes.clear();
  close_and_delete(m_link_timer);
  close_and_delete(m_watchdog_timer);
  close_and_delete(m_sigterm);
  close_and_delete(m_sigint);
  if (m_notify_poll != nullptr) {
    uv_poll_stop(m_notify_poll);
    close_and_delete(m_notify_poll);
  }
  if (m_notify_fd >= 0) {
    ::close(m_notify_fd);
    m_notify_fd = -1;
    if (m_config.notify_socket.front() != '@') ::unlink(m_config.notify_socket.c_str());
  }
}

// ---- link ------------------------------------------------------------------

void Agent::on_link_timer(uv_timer_t* timer) {
  auto* self = static_cast<Agent*>(timer->data);
  // Safe here: not inside a Dealer callback, and a loop turn has passed.
  self->m_old_dealers.clear();
  self->pump_link();
}

void Agent::pump_link() {
  if (m_stopping || m_link_timer == nullptr) return;
  uv_update_time(m_loop);
  for (int guard = 0; guard < 16; ++guard) {
    const std::uint64_t now = uv_now(m_loop);
    const LinkAction action = m_session.poll(now, random_unit());
    bool done = false;
    switch (action) {
      case LinkAction::None:
        done = true;
        break;
      case LinkAction::OpenSocket:
        open_socket();
        m_session.socket_opened(now);
        break;
      case LinkAction::SendHello:
        send_hello();
        break;
      case LinkAction::SendReport:
        send_report();
        break;
      case LinkAction::CloseSocket:
        spdlog::warn("coordinator lost (no answer in time); reconnecting with back-off");
        ++m_counters.reconnects;
        close_socket();
        break;
    }
    if (done) break;
  }
  const std::uint64_t now = uv_now(m_loop);
  const std::uint64_t next = m_session.next_wakeup_ms();
  uv_timer_start(m_link_timer, on_link_timer, next > now ? next - now : 0, 0);
}

void Agent::open_socket() {
  close_socket();
  transport::DealerOptions options;
  options.endpoint = m_config.coordinator_endpoint;
  options.routing_id = transport::new_agent_routing_id(m_config.instance_id);  // new nonce per socket
  options.curve = m_curve;
  options.reconnect_ivl_ms = static_cast<int>(m_config.backoff_base_ms);
  options.reconnect_ivl_max_ms = static_cast<int>(m_config.backoff_max_ms);
  m_dealer = std::make_unique<transport::Dealer>(m_loop, m_context, options);
  auto alive = m_alive;
  m_dealer->on_message([this, alive](std::span<const std::uint8_t> frame) {
    if (*alive) on_frame(frame);
  });
  m_dealer->on_event([this, alive](transport::DealerEvent e) {
    if (*alive) on_transport_event(e);
  });
  if (auto rc = m_dealer->connect(); !rc) {
    spdlog::error("cannot connect to {}: {}", m_config.coordinator_endpoint, rc.error().detail);
  }
  m_version_logged = false;
}

void Agent::close_socket() {
  if (!m_dealer) return;
  m_dealer->close();
  m_old_dealers.push_back(std::move(m_dealer));
}

bool Agent::send(const protocol::Message& message) {
  if (!m_dealer) return false;
  if (auto valid = protocol::validate(message); !valid) {
    spdlog::error("not sending an invalid {}: {}", protocol::command_name(message), valid.error().detail);
    return false;
  }
  const auto frame = protocol::encode(message);
  auto rc = m_dealer->send(frame);
  if (!rc) {
    spdlog::debug("{} not sent: {}", protocol::command_name(message), rc.error().detail);
    return false;
  }
  return true;
}

void Agent::send_hello() {
  protocol::Hello hello;
  hello.instance_id = m_config.instance_id;
  hello.enrollment_token = m_config.enrollment_token;
  hello.agent_version = std::string(kAgentVersion);
  hello.hostname = hostname();
  hello.service_address = m_config.service_address;
  hello.service_port = m_config.service_port;
  hello.labels = m_config.labels;
  hello.capabilities = {"drain", "hooks", "shutdown"};
  const bool ok = send(hello);
  if (ok) spdlog::debug("HELLO sent");
  m_session.hello_sent(uv_now(m_loop), ok, random_unit());
}

protocol::Metrics Agent::read_metrics() {
  ProcTexts t;
  if (m_config.metrics_scope == MetricsScope::Session) {
    t.instance = scan_instance_processes(::getpid(), ::getsid(0));
  } else {
    t.stat = read_text("/proc/stat");
  }
  t.meminfo = read_text("/proc/meminfo");
  t.loadavg = read_text("/proc/loadavg");
  t.net_dev = read_text("/proc/net/dev");
  t.net_snmp = read_text("/proc/net/snmp");
  if (!m_config.metrics_cgroup.empty()) {
    const auto& dir = m_config.metrics_cgroup;
    t.cgroup_cpu_stat = read_text(dir + "/cpu.stat");
    t.cgroup_memory_current = read_text(dir + "/memory.current");
    t.cgroup_memory_stat = read_text(dir + "/memory.stat");
    t.cgroup_memory_max = read_text(dir + "/memory.max");
  }
  auto m = m_sampler.sample(t, uv_now(m_loop));
  for (const auto& [name, value] : m_custom_metrics) {
    if (m.custom.size() >= protocol::kMaxCustomMetrics) break;
    m.custom.emplace(name, value);
  }
  return m;
}

void Agent::send_report() {
  const auto& status = m_readiness.status();
  protocol::Report report;
  report.seq = m_session.next_seq();
  report.timestamp_ms = now_ms();
  report.ready = status.ready;
  report.ready_reason = status.ready_reason;
  report.healthy = status.healthy;
  report.health_reason = status.health_reason;
  report.draining = status.draining;
  report.probes = m_readiness.probe_results();
  report.metrics = read_metrics();
  if (send(report)) {
    ++m_counters.reports_sent;
  } else {
    // Latest state only: a report that cannot go now is superseded by the next.
    ++m_counters.reports_dropped;
  }
  m_session.report_sent(uv_now(m_loop), random_unit());
}

void Agent::on_transport_event(transport::DealerEvent event) {
  switch (event) {
    case transport::DealerEvent::Connected:
      spdlog::debug("connected to {}", m_config.coordinator_endpoint);
      m_session.peer_connected(uv_now(m_loop));
      break;
    case transport::DealerEvent::Disconnected:
      // ZeroMQ reconnects by itself; a connection that keeps dropping is
      // worth seeing in the log (a restarting coordinator, a flaky network).
      spdlog::info("connection to {} dropped; reconnecting", m_config.coordinator_endpoint);
      break;
    case transport::DealerEvent::AuthFailed:
      spdlog::warn("coordinator refused this agent's key (ZAP): not enrolled, or enrollment closed");
      break;
    case transport::DealerEvent::HandshakeFailed:
      spdlog::warn("CURVE handshake with {} failed: wrong coordinator public key?", m_config.coordinator_endpoint);
      break;
  }
  pump_link();
}

void Agent::on_frame(std::span<const std::uint8_t> frame) {
  auto decoded = protocol::decode(frame);
  if (!decoded) {
    const auto& e = decoded.error();
    if (e.kind == protocol::DecodeError::Kind::UnsupportedVersion) {
      ++m_counters.version_mismatches;
      if (!m_version_logged) {
        m_version_logged = true;
        spdlog::error("coordinator speaks protocol {}.x, this agent speaks {}.{}; will keep retrying",
                      e.peer_major, protocol::kVersionMajor, protocol::kVersionMinor);
      }
      m_session.drop(uv_now(m_loop), random_unit());
      close_socket();
      pump_link();
      return;
    }
    ++m_counters.bad_messages;
    const std::uint64_t now = uv_now(m_loop);
    if (now >= m_last_bad_log_ms + 1000) {
      m_last_bad_log_ms = now;
      spdlog::warn("dropped a bad frame from the coordinator ({}: {}); {} so far",
                   protocol::to_string(e.kind), e.detail, m_counters.bad_messages);
    }
    return;
  }
  m_session.heard(uv_now(m_loop));
  handle(*decoded);
  pump_link();
}

void Agent::handle(const protocol::Message& message) {
  const bool established = m_session.state() == LinkState::Established;
  auto unexpected = [&] {
    ++m_counters.unexpected_messages;
    spdlog::debug("unexpected {} dropped", protocol::command_name(message));
  };
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, protocol::Welcome>) {
          if (m_session.state() != LinkState::Connecting) return unexpected();
          m_session.welcome(m, uv_now(m_loop));
          ++m_counters.sessions;
          spdlog::info("session {} (report every {} ms, heartbeat {} ms x {})", m.session_id,
                       m.report_interval_ms, m.heartbeat_interval_ms, m.liveness);
        } else if constexpr (std::is_same_v<T, protocol::Heartbeat>) {
          // heard() above is all a heartbeat is for.
        } else if constexpr (std::is_same_v<T, protocol::Drain>) {
          if (!established) return unexpected();
          on_drain(m);
        } else if constexpr (std::is_same_v<T, protocol::Undrain>) {
          if (!established) return unexpected();
          on_undrain(m);
        } else if constexpr (std::is_same_v<T, protocol::HookRun>) {
          if (!established) return unexpected();
          on_hook_run(m);
        } else if constexpr (std::is_same_v<T, protocol::Shutdown>) {
          if (!established) return unexpected();
          on_shutdown(m);
        } else if constexpr (std::is_same_v<T, protocol::Error>) {
          switch (m.code) {
            case protocol::ErrorCode::UnknownSession:
              spdlog::info("coordinator does not know our session (it restarted?): HELLO again");
              m_session.session_unknown(uv_now(m_loop));
              break;
            case protocol::ErrorCode::Unauthorized:
            case protocol::ErrorCode::UnknownInstance:
            case protocol::ErrorCode::UnsupportedVersion:
              spdlog::warn("coordinator refused us: ERROR {} {}; retrying after back-off",
                           static_cast<unsigned>(m.code), m.message);
              m_session.drop(uv_now(m_loop), random_unit());
              close_socket();
              break;
            case protocol::ErrorCode::BadMessage:
            case protocol::ErrorCode::Internal:
              spdlog::warn("coordinator says ERROR {} {} (command {})", static_cast<unsigned>(m.code),
                           m.message, m.command_id);
              break;
          }
        } else if constexpr (std::is_same_v<T, protocol::Goodbye>) {
          spdlog::info("coordinator said GOODBYE ({}); reconnecting with back-off", m.reason);
          m_session.drop(uv_now(m_loop), random_unit());
          close_socket();
        } else {
          // HELLO, REPORT, HOOK_RESULT, ACK: not for an agent.
          unexpected();
        }
      },
      message);
}

// ---- readiness ---------------------------------------------------------------

void Agent::readiness_changed() {
  const auto& s = m_readiness.status();
  spdlog::info("now {} and {}{} ({}{}{})", s.ready ? "ready" : "NOT ready", s.healthy ? "healthy" : "UNHEALTHY",
               s.draining ? ", draining" : "", s.ready_reason, s.healthy ? "" : "; ", s.health_reason);
  m_session.request_report();
  pump_link();
}

bool Agent::on_probe(std::size_t index, const ProbeOutcome& o) {
  if (m_readiness.record_probe(index, o.success, o.message, o.latency_ms)) readiness_changed();
  return m_readiness.probe(index).passing();
}

void Agent::on_notify_readable() {
  std::array<char, kMaxNotifyDatagram + 1> buf{};
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = ::recv(m_notify_fd, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0) break;  // EAGAIN: drained
    // A datagram larger than the buffer is garbage by definition.
    const auto size = static_cast<std::size_t>(n) > kMaxNotifyDatagram ? buf.size() : static_cast<std::size_t>(n);
    const auto message = parse_notify(std::string_view(buf.data(), size));
    m_counters.notify_ignored += message.ignored;
    for (const auto& [name, value] : message.metrics) {
      if (m_custom_metrics.size() < protocol::kMaxCustomMetrics || m_custom_metrics.count(name) != 0) {
        m_custom_metrics[name] = value;
      }
    }
    if (m_readiness.apply_notify(message)) readiness_changed();
  }
}

// ---- commands ----------------------------------------------------------------

void Agent::run_side_command(const std::string& what, const std::string& command, std::uint32_t timeout_ms) {
  if (command.empty()) return;
  run_process(m_loop, command, timeout_ms, 1024, [what](const ProcessResult& r) {
    if (r.exit_status == 0 && !r.timed_out) {
      spdlog::info("{} command finished", what);
    } else {
      spdlog::warn("{} command failed: exit {}{} {}{}", what, r.exit_status, r.timed_out ? " (timed out)" : "",
                   r.error, r.output);
    }
  });
}

void Agent::on_drain(const protocol::Drain& drain) {
  if (m_commands.first_time(drain.command_id)) {
    spdlog::info("DRAIN (command {})", drain.command_id);
    if (m_readiness.drain()) readiness_changed();
    run_side_command("drain", m_config.drain_command, m_config.drain_command_timeout_ms);
  }
  (void)send(protocol::Ack{drain.command_id});
}

void Agent::on_undrain(const protocol::Undrain& undrain) {
  if (m_commands.first_time(undrain.command_id)) {
    spdlog::info("UNDRAIN (command {})", undrain.command_id);
    if (m_readiness.undrain()) readiness_changed();
    run_side_command("undrain", m_config.undrain_command, m_config.drain_command_timeout_ms);
  }
  (void)send(protocol::Ack{undrain.command_id});
}

void Agent::on_hook_run(const protocol::HookRun& run) {
  if (!m_commands.first_time(run.command_id)) {
    // A resend: the ACK (or the result) was lost.
    if (auto it = m_hook_results.find(run.command_id); it != m_hook_results.end()) {
      (void)send(it->second);
    } else {
      (void)send(protocol::Ack{run.command_id});
    }
    return;
  }
  (void)send(protocol::Ack{run.command_id});
  auto finish = [this, alive = m_alive](protocol::HookResult result) {
    if (!*alive) return;
    spdlog::info("hook {} (command {}) finished: exit {}{}", result.hook_name, result.command_id,
                 result.exit_status, result.timed_out ? " (timed out)" : "");
    if (m_hook_results.size() >= 64) m_hook_results.erase(m_hook_results.begin());
    m_hook_results[result.command_id] = result;
    (void)send(result);
  };
  const auto hook = m_config.hooks.find(run.hook_name);
  if (hook == m_config.hooks.end()) {
    finish(protocol::HookResult{run.command_id, run.hook_name, -1, false,
                                "no hook named '" + run.hook_name + "' in the agent's configuration"});
    return;
  }
  spdlog::info("running hook {} ({}, command {})", run.hook_name, run.transition, run.command_id);
  // The agent's config bounds how long the coordinator may hold a script.
  const std::uint32_t timeout = std::min(run.timeout_ms, hook->second.timeout_ms);
  run_process(m_loop, hook->second.command, timeout, protocol::kMaxHookOutput,
              [finish, run](const ProcessResult& r) {
                finish(protocol::HookResult{run.command_id, run.hook_name, r.exit_status, r.timed_out,
                                            r.error.empty() ? r.output : r.error});
              });
}

void Agent::on_shutdown(const protocol::Shutdown& shutdown) {
  (void)send(protocol::Ack{shutdown.command_id});
  if (!m_commands.first_time(shutdown.command_id)) return;
  spdlog::info("SHUTDOWN (command {})", shutdown.command_id);
  if (m_readiness.drain()) readiness_changed();
  auto after = [this, alive = m_alive](const ProcessResult&) {
    if (!*alive) return;
    switch (m_config.shutdown_action) {
      case ShutdownAction::Exit:
        stop("SHUTDOWN from the coordinator");
        break;
      case ShutdownAction::Poweroff:
        spdlog::info("powering off: {}", m_config.poweroff_command);
        run_process(m_loop, m_config.poweroff_command, 30'000, 1024, [](const ProcessResult&) {});
        stop("SHUTDOWN from the coordinator (power off)");
        break;
      case ShutdownAction::None:
        spdlog::info("SHUTDOWN done; shutdown_action is none, staying up drained");
        break;
    }
  };
  if (m_config.pre_stop_command.empty()) {
    after(ProcessResult{});
    return;
  }
  const std::uint32_t grace = shutdown.grace_ms != 0 ? shutdown.grace_ms : m_config.drain_command_timeout_ms;
  run_process(m_loop, m_config.pre_stop_command, grace, 1024, after);
}

}  // namespace tide::agent
