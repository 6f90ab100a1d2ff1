#include "coordinator/io/server/agent_gateway.hpp"

#include <chrono>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"

namespace tide::coordinator {

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

// Command ids start at the wall-clock time in microseconds, so that a
// restarted coordinator does not reuse the ids its agents have already
// applied (they would only re-ACK them, SPEC 8): fewer than a million
// commands a second keep them rising across restarts.
std::uint64_t first_command_id() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return us > 0 ? static_cast<std::uint64_t>(us) : 1;
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
      m_context(1),
      m_sessions(SessionConfig{
          m_config.report_interval_ms, m_config.heartbeat_interval_ms, m_config.liveness,
          m_config.command_resend_ms, m_config.command_attempts,
          std::max<std::uint32_t>(20, m_config.heartbeat_interval_ms / 10), first_command_id()}) {
  std::random_device device;
  m_session_salt = (static_cast<std::uint64_t>(device()) << 32U) ^ device();
}

AgentGateway::~AgentGateway() {
  stop("coordinator stopping");
}

tl::expected<std::string, transport::TransportError> AgentGateway::start() {
  if (m_config.router.curve_server_secret_z85) {
    // Without a bound ZAP handler Debian's libzmq lets every client key in.
    m_zap = std::make_unique<transport::ZapHandler>(
        m_loop, m_context, [this](const transport::ZapRequest& request) {
          transport::ZapDecision decision;
          decision.allow =
              request.mechanism == "CURVE" && m_handler.allow_agent_key(request.client_key_z85);
          decision.status_text = decision.allow ? "OK" : "unknown agent key";
          if (!decision.allow) {
            if (const auto held = m_refusal_log.admit(uv_now(m_loop))) {
              spdlog::warn(
                  "agent link: connection from {} refused: {} CURVE key {} is not an agent's{}",
                  request.address, request.mechanism, request.client_key_z85,
                  logging::suppressed_note(*held));
            }
          }
          return decision;
        });
    if (auto bound = m_zap->bind(); !bound) return tl::make_unexpected(bound.error());
  }
  m_router = std::make_unique<transport::Router>(m_loop, m_context, m_config.router);
  m_router->on_message(
      [this](const transport::PeerId& peer, std::string_view user_id,
             std::span<const std::uint8_t> frame) { on_frame(peer, user_id, frame); });
  m_router->on_refused(
      [this](const transport::PeerId& peer, std::string_view reason) { on_refused(peer, reason); });
  auto endpoint = m_router->bind();
  if (!endpoint) return endpoint;

  m_timer = new uv_timer_t;
  uv_timer_init(m_loop, m_timer);
  m_timer->data = this;
  // HEARTBEATs go out with the REPORTs (answer_report_with_heartbeat); the
  // tick checks liveness and beats the sessions that do not report.
  const std::uint64_t period_ms = std::max<std::uint64_t>(20, m_config.heartbeat_interval_ms / 10);
  uv_timer_start(
      m_timer, [](uv_timer_t* timer) { static_cast<AgentGateway*>(timer->data)->on_tick(); },
      period_ms, period_ms);
  return endpoint;
}

void AgentGateway::stop(std::string_view reason) {
  if (m_stopped) return;
  m_stopped = true;
  if (m_router) {
    const protocol::Message goodbye = protocol::Goodbye{std::string(reason)};
    bool said_goodbye = false;
    m_sessions.for_each([&](const transport::PeerId& peer, Sessions::Session&) {
      said_goodbye = send(peer, goodbye) || said_goodbye;
    });
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
}

const transport::TransportCounters& AgentGateway::transport_counters() const {
  static const transport::TransportCounters kNone;
  return m_router ? m_router->counters() : kNone;
}

bool AgentGateway::connected(const std::string& instance_id) const {
  return m_sessions.peer_of(instance_id) != nullptr;
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
    spdlog::debug("agent link: send {} failed: {}", protocol::command_name(message),
                  sent.error().detail);
    return false;
  }
  m_sessions.sent(peer, uv_now(m_loop));
  return true;
}

void AgentGateway::send_error(const transport::PeerId& peer, protocol::ErrorCode code,
                              std::string message, std::uint64_t command_id) {
  // Answers to refused frames (400, 505) go out at most once a second per
  // peer, so garbage cannot amplify traffic. 401, 404 and 410 answer a
  // well-formed message one for one and are never held back: an agent needs
  // each of them to act (back off, or say HELLO) (SPEC 12).
  if (code == protocol::ErrorCode::BadMessage || code == protocol::ErrorCode::UnsupportedVersion) {
    const std::uint64_t now = uv_now(m_loop);
    // Bound the memory.
    if (m_last_refusal_answer_ms.size() > 100'000) m_last_refusal_answer_ms.clear();
    auto [last, first] = m_last_refusal_answer_ms.try_emplace(peer, now);
    if (!first) {
      if (now - last->second < 1000) return;
      last->second = now;
    }
  }
  (void)send(peer, protocol::Error{code, std::move(message), command_id});
}

void AgentGateway::on_refused(const transport::PeerId& peer, std::string_view reason) {
  ++m_stats.bad_frames;
  ++m_stats.multipart_frames;
  send_error(peer, protocol::ErrorCode::BadMessage, std::string(reason));
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

  Sessions::Session* found = m_sessions.find(peer);
  if (found == nullptr) {
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
  Sessions::Session& session = *found;
  if (!session.agent_key.empty() && user_id != session.agent_key) {
    // A frame on this routing id from another key: never trust it.
    ++m_stats.bad_frames;
    return;
  }
  Sessions::heard(session, uv_now(m_loop));
  // Copied: the handler may end the session (and free `session`).
  const std::string instance_id = session.instance_id;

  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, protocol::Report>) {
          if (!Sessions::fresh_report(session, m.seq)) {
            ++m_stats.reports_stale;
            return;
          }
          ++m_stats.reports;
          m_handler.on_report(instance_id, m);
          m_latency.record_us(monotonic_us() - started_us);
          answer_report_with_heartbeat(peer);
        } else if constexpr (std::is_same_v<T, protocol::Heartbeat>) {
          // last_rx_ms is all a heartbeat carries.
        } else if constexpr (std::is_same_v<T, protocol::Ack>) {
          if (m_sessions.acknowledged(m.command_id)) {
            m_command_frames.erase(m.command_id);
            m_handler.on_ack(instance_id, m.command_id);
          }
        } else if constexpr (std::is_same_v<T, protocol::HookResult>) {
          m_handler.on_hook_result(instance_id, m);
        } else if constexpr (std::is_same_v<T, protocol::Goodbye>) {
          end_session(peer, m.reason.empty() ? "agent said goodbye" : m.reason, true);
        } else if constexpr (std::is_same_v<T, protocol::Error>) {
          spdlog::warn("agent {} reports error {}: {}", instance_id, static_cast<unsigned>(m.code),
                       m.message);
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
  // Only the connection whose routing id names the instance, with a nonce
  // nobody else can guess, may speak for it: a HELLO from any other routing
  // id could not keep its session from being handed over (SPEC 3.2).
  const HelloVerdict verdict =
      transport::is_agent_routing_id_for(peer, hello.instance_id)
          ? m_handler.on_hello(hello, user_id)
          : HelloVerdict{false, protocol::ErrorCode::Unauthorized,
                         "the routing id must be \"a:" + hello.instance_id +
                             "/\" followed by 32 random hex digits"};
  if (!verdict.accepted) {
    ++m_stats.hellos_refused;
    if (const auto held = m_refusal_log.admit(uv_now(m_loop))) {
      spdlog::warn("agent link: HELLO from instance '{}' refused: {}{}", hello.instance_id,
                   verdict.message, logging::suppressed_note(*held));
    }
    send_error(peer, verdict.code, verdict.message);
    return;
  }
  // A connection that spoke for another instance no longer does: that
  // instance has lost its agent (otherwise its commands would go here). A
  // reconnect of the same instance replaces its session without on_lost, so
  // a reconnect does not make a healthy instance lost.
  const std::string session_id = new_session_id();
  auto ended =
      m_sessions.open(peer, hello.instance_id, std::string(user_id), session_id, uv_now(m_loop));
  m_stats.sessions = m_sessions.size();
  if (ended) {
    ++m_stats.sessions_lost;
    m_handler.on_lost(ended->instance_id, ended->reason);
  }
  const protocol::Welcome welcome{session_id, m_config.report_interval_ms,
                                  m_config.heartbeat_interval_ms, m_config.liveness};
  (void)send(peer, welcome);
}

void AgentGateway::end_session(const transport::PeerId& peer, std::string_view reason,
                               bool notify) {
  auto ended = m_sessions.close(peer, std::string(reason));
  if (!ended) return;
  m_stats.sessions = m_sessions.size();
  ++m_stats.sessions_lost;
  if (notify) m_handler.on_lost(ended->instance_id, ended->reason);
}

std::optional<std::uint64_t> AgentGateway::send_command(const std::string& instance_id,
                                                        protocol::Message command) {
  const std::uint64_t now = uv_now(m_loop);
  const auto [id, peer] = m_sessions.add_command(instance_id, now);
  set_command_id(command, id);
  auto& frame = m_command_frames[id] = protocol::encode(command);
  if (!peer) return std::nullopt;
  if (m_router->send(*peer, frame)) {
    ++m_stats.commands_sent;
    m_sessions.sent(*peer, now);
  } else {
    m_sessions.send_failed(id, now);
  }
  return id;
}

// The HEARTBEAT a session is owed goes out when its REPORT arrives, so the
// sends follow the agents' phases spread over the second instead of piling
// up in one tick (at 10,000 agents that held the loop for ~10 ms).
void AgentGateway::answer_report_with_heartbeat(const transport::PeerId& peer) {
  const std::uint64_t now = uv_now(m_loop);
  if (!m_sessions.heartbeat_with_report(peer, now)) return;  // also: the handler ended the session
  if (m_router->send(peer, m_heartbeat_frame)) m_sessions.sent(peer, now);
}

void AgentGateway::on_tick() {
  const std::uint64_t now = uv_now(m_loop);
  auto due = m_sessions.poll(now);
  for (const auto& peer : due.heartbeat) {
    if (m_router->send(peer, m_heartbeat_frame)) m_sessions.sent(peer, now);
  }
  for (const auto& [peer, command_id] : due.resend) {
    auto frame = m_command_frames.find(command_id);
    if (frame == m_command_frames.end() || !m_router->send(peer, frame->second)) continue;
    if (m_sessions.attempts(command_id) > 1)
      ++m_stats.commands_resent;
    else
      ++m_stats.commands_sent;
    m_sessions.sent(peer, now);
  }
  for (const auto& expired : due.expired) {
    ++m_stats.commands_expired;
    m_command_frames.erase(expired.command_id);
    spdlog::warn("agent {}: command {} was never acknowledged", expired.instance_id,
                 expired.command_id);
  }
  m_stats.sessions = m_sessions.size();
  for (const auto& lost : due.lost) {
    ++m_stats.sessions_lost;
    m_handler.on_lost(lost.instance_id, lost.reason);
  }
}

}  // namespace tide::coordinator
