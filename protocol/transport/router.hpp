// Router: the coordinator's end of the agent link (ZMQ_ROUTER, binds).
//
// Options follow protocol/SPEC.md, "Transport": ROUTER_MANDATORY (a send to a
// gone peer is an error, not a silent drop), ROUTER_HANDOVER (a reconnecting
// agent with the same routing id takes over), MAXMSGSIZE = kMaxFrameBytes (an
// oversized frame disconnects that peer only), LINGER 0, TCP keep-alive, a
// large listen backlog; ZMTP pings only from the agents (see RouterOptions).
//
// With curve_server_secret_z85 set the socket is a CURVE server. Bind a
// ZapHandler in the same zmq::context_t BEFORE bind(): without a ZAP handler
// Debian's libzmq lets every client key in.
//
// Each inbound message must be [routing-id, frame]; anything else is counted
// (dropped_in, dropped_multipart), dropped, and reported to on_refused so that
// the protocol layer can count and answer it. All callbacks run on the loop
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "protocol/messages.hpp"
#include "protocol/transport/common.hpp"

namespace tide::transport {

class ZmqPoller;

struct RouterOptions {
  std::string endpoint = "tcp://*:7400";    // "tcp://127.0.0.1:*" picks a free port
  std::optional<std::string> curve_server_secret_z85;  // none = no encryption (tests only)
  std::string zap_domain = "tide";          // passed to the ZAP handler
  bool mandatory = true;                    // ZMQ_ROUTER_MANDATORY
  bool handover = true;                     // ZMQ_ROUTER_HANDOVER
  std::int64_t max_frame_bytes = static_cast<std::int64_t>(protocol::kMaxFrameBytes);
  // ZMTP pings from this side: off by default. libzmq 4.3 cancels a timer by
  // walking all of them (poller_base_t::cancel_timer), and every incoming
  // frame cancels its peer's ping timeout, so at 10,000 peers the I/O thread
  // spent 70 % of its time there and starved (bench_ingest, perf). The
  // gateway's own HEARTBEAT/liveness detects dead agents, TCP keep-alive
  // closes their connections, and the agents' DEALERs still ping us.
  int heartbeat_ivl_ms = 0;                 // ZMQ_HEARTBEAT_IVL; 0 = off
  int heartbeat_timeout_ms = 15000;         // ZMQ_HEARTBEAT_TIMEOUT
  // Kernel keep-alive (no libzmq timers): a peer whose host died is
  // disconnected after idle + count × interval seconds. idle 0 = off.
  int tcp_keepalive_idle_s = 30;
  int tcp_keepalive_interval_s = 10;
  int tcp_keepalive_count = 3;
  // Listen backlog (ZMQ_BACKLOG; libzmq's default is 100): thousands of
  // agents reconnecting at once after a coordinator restart must not have
  // their SYNs dropped into TCP's seconds-long back-off. The kernel caps it at
  // net.core.somaxconn.
  int backlog = 4096;
  int sndhwm = 1000;                        // messages, per peer
  int rcvhwm = 1000;                        // messages, per peer
};

class Router {
 public:
  // routing_id: the peer; user_id: the ZAP User-Id (the client's CURVE public
  // key in Z85), empty without CURVE; frame: valid only during the call.
  using MessageFn = std::function<void(const PeerId& routing_id, std::string_view user_id,
                                       std::span<const std::uint8_t> frame)>;
  // A message the transport refused before on_message (today: one with more
  // than one frame after the routing id); `reason` is human readable.
  using RefusedFn = std::function<void(const PeerId& routing_id, std::string_view reason)>;

  Router(uv_loop_t* loop, zmq::context_t& context, RouterOptions options);
  ~Router();  // close()
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Set before bind(); may be replaced later. Exceptions thrown by it are
  // caught, logged and counted in dropped_in.
  void on_message(MessageFn fn) { m_on_message = std::move(fn); }
  // Optional; same rules as on_message.
  void on_refused(RefusedFn fn) { m_on_refused = std::move(fn); }

  // Creates the socket, binds it and starts polling. Returns the actual
  // endpoint (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234".
  [[nodiscard]] tl::expected<std::string, TransportError> bind();

  // Never blocks. PeerGone when no peer has that routing id (any more),
  // WouldBlock when its queue is full, TooLarge above max_frame_bytes.
  [[nodiscard]] tl::expected<void, TransportError> send(const PeerId& routing_id,
                                                        std::span<const std::uint8_t> frame);

  // Stops polling and closes the socket (linger 0). Idempotent; safe inside
  // on_message. The loop must run once more to release the poll handles.
  void close() noexcept;

  [[nodiscard]] const TransportCounters& counters() const noexcept { return m_counters; }
  [[nodiscard]] const std::string& endpoint() const noexcept { return m_bound_endpoint; }

 private:
  bool receive_one() noexcept;

  uv_loop_t* m_loop;
  zmq::context_t& m_context;
  RouterOptions m_options;
  std::optional<zmq::socket_t> m_socket;
  ZmqPoller* m_poller = nullptr;
  MessageFn m_on_message;
  RefusedFn m_on_refused;
  TransportCounters m_counters;
  std::string m_bound_endpoint;
  std::uint64_t m_last_warn_ms = 0;
  std::uint64_t m_suppressed_warnings = 0;
};

}  // namespace tide::transport
