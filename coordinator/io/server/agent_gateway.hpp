// AgentGateway: the coordinator's end of the agent protocol (protocol/SPEC.md).
//
// It owns the ROUTER socket and the ZAP handler, turns frames into protocol
// messages and sends what the session rules ask for: one session per
// connected agent (HELLO → WELCOME, REPORT sequence numbers, liveness,
// HEARTBEAT) and commands (DRAIN, UNDRAIN, HOOK_RUN, SHUTDOWN) resent until
// the agent ACKs them. The rules themselves are the pure SessionTable
// (coordinator/core/session_table.hpp), tested on a fake clock.
// Decisions about instances are not made here: they go to the Handler (the
// control loop), which owns the fleet.
//
// Everything runs on one libuv loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <tl/expected.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "common/logging/logging.hpp"
#include "coordinator/core/exposition.hpp"
#include "coordinator/core/session_table.hpp"
#include "protocol/messages.hpp"
#include "protocol/transport/router.hpp"
#include "protocol/transport/zap_handler.hpp"

namespace tide::coordinator {

struct GatewayConfig {
  transport::RouterOptions router;  // endpoint; curve_server_secret_z85 set = CURVE on
  std::uint32_t report_interval_ms = 1000;
  std::uint32_t heartbeat_interval_ms = 1000;
  std::uint32_t liveness = 3;  // silent intervals before a session is lost
  std::uint32_t command_resend_ms = 1000;
  std::uint32_t command_attempts = 5;
};

// What the control loop decides about a HELLO.
struct HelloVerdict {
  bool accepted = false;
  protocol::ErrorCode code = protocol::ErrorCode::Unauthorized;  // when refused
  std::string message;                                           // when refused
};

class AgentGatewayHandler {
 public:
  virtual ~AgentGatewayHandler() = default;
  // ZAP: may this CURVE client key complete the handshake at all?
  virtual bool allow_agent_key(std::string_view agent_key) = 0;
  // A HELLO from `agent_key` (empty without CURVE). Accepting starts a session.
  virtual HelloVerdict on_hello(const protocol::Hello& hello, std::string_view agent_key) = 0;
  virtual void on_report(const std::string& instance_id, const protocol::Report& report) = 0;
  // The session ended: liveness expired, GOODBYE, or its connection said
  // HELLO for another instance. A reconnect of the same instance (a new
  // HELLO) replaces its session without on_lost.
  virtual void on_lost(const std::string& instance_id, std::string_view reason) = 0;
  virtual void on_ack(const std::string& instance_id, std::uint64_t command_id) = 0;
  virtual void on_hook_result(const std::string& instance_id,
                              const protocol::HookResult& result) = 0;
};

struct GatewayStats {
  std::uint64_t sessions = 0;
  std::uint64_t hellos = 0;
  std::uint64_t hellos_refused = 0;
  std::uint64_t reports = 0;
  std::uint64_t reports_stale = 0;  // seq not increasing
  // Every frame refused (SPEC 12); /metrics: tide_bad_frames_total.
  std::uint64_t bad_frames = 0;        // undecodable, multi-part, unexpected or from the wrong key
  std::uint64_t multipart_frames = 0;  // of bad_frames: more than one frame (SPEC 3.1)
  std::uint64_t unknown_session = 0;   // needed a session, had none (answered 410)
  std::uint64_t sessions_lost = 0;
  std::uint64_t commands_sent = 0;
  std::uint64_t commands_resent = 0;
  std::uint64_t commands_expired = 0;  // never ACKed
};

class AgentGateway {
 public:
  AgentGateway(uv_loop_t* loop, GatewayConfig config, AgentGatewayHandler& handler);
  ~AgentGateway();
  AgentGateway(const AgentGateway&) = delete;
  AgentGateway& operator=(const AgentGateway&) = delete;

  // Binds the ZAP handler (with CURVE) and the ROUTER; returns the endpoint.
  [[nodiscard]] tl::expected<std::string, transport::TransportError> start();
  // Says GOODBYE to every session and closes the sockets. Idempotent.
  void stop(std::string_view reason);

  // Sends a command (Drain, Undrain, HookRun, Shutdown) to the instance's
  // agent, assigning its command_id; resent until ACKed or until
  // command_attempts resend periods have passed. Returns the id, or nullopt
  // when the instance has no session now: the command is still queued and
  // goes out if the agent says HELLO before its attempts run out.
  std::optional<std::uint64_t> send_command(const std::string& instance_id,
                                            protocol::Message command);
  [[nodiscard]] bool connected(const std::string& instance_id) const;

  [[nodiscard]] const GatewayStats& stats() const { return m_stats; }
  [[nodiscard]] LatencyHistogram& report_latency() { return m_latency; }
  [[nodiscard]] const transport::TransportCounters& transport_counters() const;

 private:
  using Sessions = SessionTable<transport::PeerId>;

  void on_frame(const transport::PeerId& peer, std::string_view user_id,
                std::span<const std::uint8_t> frame);
  void on_refused(const transport::PeerId& peer, std::string_view reason);
  void on_hello(const transport::PeerId& peer, std::string_view user_id,
                const protocol::Hello& hello);
  void on_tick();
  void answer_report_with_heartbeat(const transport::PeerId& peer);
  void end_session(const transport::PeerId& peer, std::string_view reason, bool notify);
  bool send(const transport::PeerId& peer, const protocol::Message& message);
  void send_error(const transport::PeerId& peer, protocol::ErrorCode code, std::string message,
                  std::uint64_t command_id = 0);
  std::string new_session_id();

  uv_loop_t* m_loop;
  GatewayConfig m_config;
  AgentGatewayHandler& m_handler;
  const std::vector<std::uint8_t> m_heartbeat_frame;  // every HEARTBEAT is this frame
  zmq::context_t m_context;
  std::unique_ptr<transport::ZapHandler> m_zap;
  std::unique_ptr<transport::Router> m_router;
  uv_timer_t* m_timer = nullptr;
  // Sessions, liveness and command delivery: the decisions (core); the
  // gateway sends what they ask for. Times are uv_now.
  Sessions m_sessions;
  std::unordered_map<std::uint64_t, std::vector<std::uint8_t>>
      m_command_frames;  // by command id, until ACK or expiry
  // When each peer was last answered a refused frame (ERROR 400/505): those
  // answers are limited to one a second per peer (SPEC 12).
  std::unordered_map<transport::PeerId, std::uint64_t> m_last_refusal_answer_ms;
  std::uint64_t m_session_counter = 0;
  std::uint64_t m_session_salt = 0;
  // Refused HELLOs and CURVE keys: a peer can provoke them at will.
  logging::RateLimit m_refusal_log{10, 60'000};
  GatewayStats m_stats;
  LatencyHistogram m_latency;  // report processing: decode + handler
  bool m_stopped = false;
};

}  // namespace tide::coordinator
