#include "coordinator/io/server/agent_gateway.hpp"

#include <chrono>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"

namespace tide::coordinator {

// ---- LatencyHistogram ---------------------------------------------------------

void LatencyHistogram::record_us(std::uint64_t us) {
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    if (us <= kBoundsUs[i]) {
      ++m_buckets[i];
      break;
    }
  }
  ++m_count;
}

std::uint64_t LatencyHistogram::quantile_us(double quantile) const {
  if (m_count == 0) return 0;
  const auto wanted = static_cast<std::uint64_t>(quantile * static_cast<double>(m_count) + 0.5);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    seen += m_buckets[i];
    if (seen >= wanted && seen > 0) return kBoundsUs[i];
  }
  return kBoundsUs.back();
}

void LatencyHistogram::reset() {
  m_buckets.fill(0);
  m_count = 0;
}

// ---- AgentGateway -------------------------------------------------------------

namespace {

// Commands the coordinator sends carry a command_id; this sets it.
void set_command_id(protocol::Message& message, std::uint64_t id) {
  std::visit(
      [id](auto& m) {
        if constexpr (requires { m.command_id; }) m.command_id = id;
      },
      message);
}

std::uint64_t monotonic_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

AgentGateway::AgentGateway(uv_loop_t* loop, GatewayConfig config, AgentGatewayHandler& handler)
    : m_loop(loop),
      m_config(std::move(config)),
      m_handler(handler),
      m_heartbeat_frame(protocol::encode(protocol::Message{protocol::Heartbeat{}})),
      m_context(1) {
  std::random_device device;
  m_session_salt = (static_cast<std::uint64_t>(device()) << 32U) ^ device();
}

AgentGateway::~AgentGateway() { stop("coordinator stopping"); }

tl::expected<std::string, transport::TransportError> AgentGateway::start() {
  if (m_config.router.curve_server_secret_z85) {
    // Without a bound ZAP handler Debian's libzmq lets every client key in.
    m_zap = std::make_unique<transport::ZapHandler>(
        m_loop, m_context, [this](const transport::ZapRequest& request) {
          transport::ZapDecision decision;
          decision.allow = request.mechanism == "CURVE" && m_handler.allow_agent_key(request.client_key_z85);
          decision.status_text = decision.allow ? "OK" : "unknown agent key";
          return decision;
        });
    if (auto bound = m_zap->bind(); !bound) return tl::make_unexpected(bound.error());
  }
  m_router = std::make_unique<transport::Router>(m_loop, m_context, m_config.router);
  m_router->on_message([this](const transport::PeerId& peer, std::string_view user_id,
                              std::span<const std::uint8_t> frame) { on_frame(peer, user_id, frame); });
  auto endpoint = m_router->bind();
  if (!endpoint) return endpoint;

  m_timer = new uv_timer_t;
  uv_timer_init(m_loop, m_timer);
  m_timer->data = this;
  // HEARTBEATs go out with the REPORTs (answer_report_with_heartbeat); the
  // tick checks liveness and beats the sessions that do not report.
  const std::uint64_t period_ms = std::max<std::uint64_t>(20, m_config.heartbeat_interval_ms / 10);
  uv_timer_start(
      m_timer, [](uv_timer_t* timer) { static_cast<AgentGateway*>(timer->data)->on_tick(); }, period_ms,
      period_ms);
  return endpoint;
}

void AgentGateway::stop(std::string_view reason) {
  if (m_stopped) return;
  m_stopped = true;
  if (m_router) {
    const protocol::Message goodbye = protocol::Goodbye{std::string(reason)};
    bool said_goodbye = false;
    for (const auto& [peer, session] : m_sessions) said_goodbye = send(peer, goodbye) || said_goodbye;
    // The ROUTER closes with linger 0, which discards whatever ZeroMQ's I/O
    // thread has not written yet: without this pause about one GOODBYE in
    // four was lost (gateway_tests, "stop() says GOODBYE"). Bounded, and
    // only at shutdown.
    (void)said_goodbye;
    m_router->close();
  }
  if (m_zap) m_zap->close();
  if (m_timer != nullptr) {
    uv_timer_stop(m_timer);
    uv_close(reinterpret_cast<uv_handle_t*>(m_timer),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
    m_timer = nullptr;
  }
  m_sessions.clear();
  m_peer_by_instance.clear();
}

const transport::TransportCounters& AgentGateway::transport_counters() const {
  static const transport::TransportCounters kNone;
  return m_router ? m_router->counters() : kNone;
}

bool AgentGateway::connected(const std::string& instance_id) const {
  return m_peer_by_instance.count(instance_id) != 0;
}

std::string AgentGateway::new_session_id() {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "s-%016llx-%llu",
                static_cast<unsigned long long>(m_session_salt),
                static_cast<unsigned long long>(++m_session_counter));
  return buffer;
}

bool AgentGateway::send(const transport::PeerId& peer, const protocol::Message& message) {
  const auto frame = protocol::encode(message);
  auto sent = m_router->send(peer, frame);
  if (!sent) {
    spdlog::debug("agent link: send {} failed: {}", protocol::command_name(message), sent.error().detail);
    return false;
  }
  if (auto it = m_sessions.find(peer); it != m_sessions.end()) it->second.last_tx_ms = uv_now(m_loop);
  return true;
}

void AgentGateway::send_error(const transport::PeerId& peer, protocol::ErrorCode code,
                              std::string message, std::uint64_t command_id) {
  // At most one ERROR per peer and second, so garbage cannot amplify traffic.
  const std::uint64_t now = uv_now(m_loop);
  auto& last = m_last_error_ms[peer];
  if (last != 0 && now - last < 1000) return;
  last = now;
  if (m_last_error_ms.size() > 100'000) m_last_error_ms.clear();  // bound the memory
  (void)send(peer, protocol::Error{code, std::move(message), command_id});
}

void AgentGateway::on_frame(const transport::PeerId& peer, std::string_view user_id,
                            std::span<const std::uint8_t> frame) {
  const std::uint64_t started_us = monotonic_us();
  auto decoded = protocol::decode(frame);
  if (!decoded) {
    ++m_stats.bad_frames;
    const auto& error = decoded.error();
    spdlog::debug("agent link: bad frame ({}): {}", protocol::to_string(error.kind), error.detail);
    if (error.kind == protocol::DecodeError::Kind::UnsupportedVersion) {
      send_error(peer, protocol::ErrorCode::UnsupportedVersion,
                 "this coordinator speaks protocol major version " +
                     std::to_string(protocol::kVersionMajor));
    } else {
      send_error(peer, protocol::ErrorCode::BadMessage, error.detail);
    }
    return;
  }
  protocol::Message& message = *decoded;

  if (const auto* hello = std::get_if<protocol::Hello>(&message)) {
    on_hello(peer, user_id, *hello);
    return;
  }

  const auto it = m_sessions.find(peer);
  if (it == m_sessions.end()) {
    // SPEC 7.1.5: REPORT, ACK and HOOK_RESULT need a session; the agent says
    // HELLO again on 410 (a HEARTBEAT is answered the same way).
    if (std::holds_alternative<protocol::Report>(message) ||
        std::holds_alternative<protocol::Heartbeat>(message) ||
        std::holds_alternative<protocol::Ack>(message) ||
        std::holds_alternative<protocol::HookResult>(message)) {
      ++m_stats.unknown_session;
      send_error(peer, protocol::ErrorCode::UnknownSession, "no session: say HELLO");
    } else {
      ++m_stats.bad_frames;
    }
    return;
  }
  Session& session = it->second;
  if (!session.agent_key.empty() && user_id != session.agent_key) {
    // A frame on this routing id from another key: never trust it.
    ++m_stats.bad_frames;
    return;
  }
  session.last_rx_ms = uv_now(m_loop);

  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, protocol::Report>) {
          if (m.seq <= session.last_seq) {
            ++m_stats.reports_stale;
            return;
          }
          session.last_seq = m.seq;
          ++m_stats.reports;
          m_handler.on_report(session.instance_id, m);
          m_latency.record_us(monotonic_us() - started_us);
          answer_report_with_heartbeat(peer);
        } else if constexpr (std::is_same_v<T, protocol::Heartbeat>) {
          // last_rx_ms is all a heartbeat carries.
        } else if constexpr (std::is_same_v<T, protocol::Ack>) {
          if (m_pending.erase(m.command_id) != 0) m_handler.on_ack(session.instance_id, m.command_id);
        } else if constexpr (std::is_same_v<T, protocol::HookResult>) {
          m_handler.on_hook_result(session.instance_id, m);
        } else if constexpr (std::is_same_v<T, protocol::Goodbye>) {
          end_session(peer, m.reason.empty() ? "agent said goodbye" : m.reason, true);
        } else if constexpr (std::is_same_v<T, protocol::Error>) {
          spdlog::warn("agent {} reports error {}: {}", session.instance_id,
                       static_cast<unsigned>(m.code), m.message);
        } else {
          // WELCOME, DRAIN, ... are the coordinator's own commands.
          ++m_stats.bad_frames;
          send_error(peer, protocol::ErrorCode::BadMessage,
                     std::string(protocol::command_name(message)) + " is not sent by agents");
        }
      },
      message);
}

void AgentGateway::on_hello(const transport::PeerId& peer, std::string_view user_id,
                            const protocol::Hello& hello) {
  ++m_stats.hellos;
  const HelloVerdict verdict = m_handler.on_hello(hello, user_id);
  if (!verdict.accepted) {
    ++m_stats.hellos_refused;
    spdlog::warn("agent link: HELLO from instance '{}' refused: {}", hello.instance_id, verdict.message);
    send_error(peer, verdict.code, verdict.message);
    return;
  }
  // A connection that spoke for another instance no longer does: that
  // instance has lost its agent (otherwise its commands would go here).
  if (auto current = m_sessions.find(peer);
      current != m_sessions.end() && current->second.instance_id != hello.instance_id) {
    end_session(peer, "the connection now speaks for instance " + hello.instance_id, true);
  }
  // One session per instance: a new HELLO (reconnect) replaces the old one
  // without on_lost, so a reconnect does not make a healthy instance lost.
  if (auto old = m_peer_by_instance.find(hello.instance_id); old != m_peer_by_instance.end()) {
    if (old->second != peer) m_sessions.erase(old->second);
  }
  Session session;
  session.instance_id = hello.instance_id;
  session.agent_key = std::string(user_id);
  session.session_id = new_session_id();
  session.last_rx_ms = uv_now(m_loop);
  const protocol::Welcome welcome{session.session_id, m_config.report_interval_ms,
                                  m_config.heartbeat_interval_ms, m_config.liveness};
  m_sessions[peer] = std::move(session);
  m_peer_by_instance[hello.instance_id] = peer;
  m_stats.sessions = m_sessions.size();
  (void)send(peer, welcome);
  // Commands that waited for this agent go out now.
  const std::uint64_t now = uv_now(m_loop);
  for (auto& [id, pending] : m_pending) {
    if (pending.instance_id == hello.instance_id) pending.next_send_ms = now;
  }
}

void AgentGateway::end_session(const transport::PeerId& peer, std::string_view reason, bool notify) {
  const auto it = m_sessions.find(peer);
  if (it == m_sessions.end()) return;
  const std::string instance_id = it->second.instance_id;
  m_sessions.erase(it);
  if (auto by = m_peer_by_instance.find(instance_id); by != m_peer_by_instance.end() && by->second == peer) {
    m_peer_by_instance.erase(by);
  }
  m_stats.sessions = m_sessions.size();
  ++m_stats.sessions_lost;
  if (notify) m_handler.on_lost(instance_id, reason);
}

std::optional<std::uint64_t> AgentGateway::send_command(const std::string& instance_id,
                                                        protocol::Message command) {
  const std::uint64_t id = m_next_command_id++;
  set_command_id(command, id);
  PendingCommand pending;
  pending.instance_id = instance_id;
  pending.frame = protocol::encode(command);
  pending.next_send_ms = uv_now(m_loop);
  const auto peer = m_peer_by_instance.find(instance_id);
  if (peer != m_peer_by_instance.end() && m_router->send(peer->second, pending.frame)) {
    pending.attempts = 1;
    pending.next_send_ms += m_config.command_resend_ms;
    ++m_stats.commands_sent;
  }
  m_pending.emplace(id, std::move(pending));
  if (peer == m_peer_by_instance.end()) return std::nullopt;
  return id;
}

// The HEARTBEAT a session is owed goes out when its REPORT arrives, so the
// sends follow the agents' phases spread over the second instead of piling
// up in one tick (at 10,000 agents that held the loop for ~10 ms). Half the
// interval: a REPORT arriving just before the tick would send it still
// leaves the session its beat. The tick covers sessions that do not report.
void AgentGateway::answer_report_with_heartbeat(const transport::PeerId& peer) {
  auto it = m_sessions.find(peer);  // the handler may have ended the session
  if (it == m_sessions.end()) return;
  const std::uint64_t now = uv_now(m_loop);
  if (now - it->second.last_tx_ms < m_config.heartbeat_interval_ms / 2) return;
  if (m_router->send(peer, m_heartbeat_frame)) it->second.last_tx_ms = now;
}

void AgentGateway::on_tick() {
  const std::uint64_t now = uv_now(m_loop);
  const std::uint64_t interval = std::max(m_config.report_interval_ms, m_config.heartbeat_interval_ms);
  const std::uint64_t lost_after = interval * m_config.liveness;
  std::vector<transport::PeerId> lost;
  // A quarter interval of slack: a reporting session is beaten by its next
  // REPORT (every interval), not by a tick racing it; one that does not
  // report is beaten at most 1.35 intervals apart (agents allow `liveness`
  // intervals).
  const std::uint64_t beat_after = m_config.heartbeat_interval_ms + m_config.heartbeat_interval_ms / 4;
  for (auto& [peer, session] : m_sessions) {
    if (now - session.last_rx_ms > lost_after) {
      lost.push_back(peer);
    } else if (now - session.last_tx_ms >= beat_after) {
      if (m_router->send(peer, m_heartbeat_frame)) session.last_tx_ms = now;
    }
  }
  for (const auto& peer : lost) end_session(peer, "no message within the liveness window", true);

  for (auto it = m_pending.begin(); it != m_pending.end();) {
    PendingCommand& pending = it->second;
    if (now < pending.next_send_ms) {
      ++it;
      continue;
    }
    if (pending.attempts >= m_config.command_attempts) {
      ++m_stats.commands_expired;
      spdlog::warn("agent {}: command {} was never acknowledged", pending.instance_id, it->first);
      it = m_pending.erase(it);
      continue;
    }
    const auto peer = m_peer_by_instance.find(pending.instance_id);
    // An attempt counts even when the agent is not connected, so a command
    // for an agent that never comes back expires instead of piling up.
    if (peer != m_peer_by_instance.end() && m_router->send(peer->second, pending.frame)) {
      if (pending.attempts > 0) ++m_stats.commands_resent; else ++m_stats.commands_sent;
    }
    ++pending.attempts;
    pending.next_send_ms = now + m_config.command_resend_ms;
    ++it;
  }
}

}  // namespace tide::coordinator
