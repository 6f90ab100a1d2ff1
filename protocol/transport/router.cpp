#include "protocol/transport/router.hpp"

#include <spdlog/spdlog.h>

#include "protocol/transport/curve.hpp"
#include "protocol/transport/detail.hpp"
#include "protocol/transport/zmq_poller.hpp"

namespace tide::transport {

using Kind = TransportError::Kind;

Router::Router(uv_loop_t* loop, zmq::context_t& context, RouterOptions options)
    : m_loop(loop), m_context(context), m_options(std::move(options)) {}

Router::~Router() { close(); }

tl::expected<std::string, TransportError> Router::bind() {
  if (m_socket) return tl::unexpected(TransportError{Kind::InvalidArgument, "already bound", 0});
  if (m_options.curve_server_secret_z85 && !is_valid_z85_key(*m_options.curve_server_secret_z85)) {
    return tl::unexpected(
        TransportError{Kind::InvalidArgument, "curve server secret is not a Z85 key", 0});
  }
  try {
    zmq::socket_t socket(m_context, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::router_mandatory, m_options.mandatory);
    socket.set(zmq::sockopt::router_handover, m_options.handover);
    socket.set(zmq::sockopt::maxmsgsize,
               wire_frame_limit(m_options.max_frame_bytes, m_options.curve_server_secret_z85.has_value()));
    socket.set(zmq::sockopt::heartbeat_ivl, m_options.heartbeat_ivl_ms);
    socket.set(zmq::sockopt::heartbeat_timeout, m_options.heartbeat_timeout_ms);
    socket.set(zmq::sockopt::backlog, m_options.backlog);
    if (m_options.tcp_keepalive_idle_s > 0) {
      socket.set(zmq::sockopt::tcp_keepalive, 1);
      socket.set(zmq::sockopt::tcp_keepalive_idle, m_options.tcp_keepalive_idle_s);
      socket.set(zmq::sockopt::tcp_keepalive_intvl, m_options.tcp_keepalive_interval_s);
      socket.set(zmq::sockopt::tcp_keepalive_cnt, m_options.tcp_keepalive_count);
    }
    socket.set(zmq::sockopt::sndhwm, m_options.sndhwm);
    socket.set(zmq::sockopt::rcvhwm, m_options.rcvhwm);
    if (m_options.curve_server_secret_z85) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, *m_options.curve_server_secret_z85);
      socket.set(zmq::sockopt::zap_domain, m_options.zap_domain);
    }
    socket.bind(m_options.endpoint);
    m_bound_endpoint = socket.get(zmq::sockopt::last_endpoint);
    m_socket.emplace(std::move(socket));
  } catch (const zmq::error_t& e) {
    const Kind kind = e.num() == EINVAL || e.num() == EPROTONOSUPPORT ? Kind::InvalidArgument : Kind::Io;
    return tl::unexpected(
        detail::make_error(kind, "router bind " + m_options.endpoint, e.num()));
  }
  auto poller = ZmqPoller::start(m_loop, *m_socket, [this] { return receive_one(); });
  if (!poller) {
    m_socket.reset();
    return tl::unexpected(poller.error());
  }
  m_poller = *poller;
  return m_bound_endpoint;
}

bool Router::receive_one() noexcept {
  zmq::message_t routing_id;
  zmq::message_t frame;
  try {
    if (!m_socket->recv(routing_id, zmq::recv_flags::dontwait)) return false;
    bool well_formed = routing_id.more();
    if (well_formed) {
      // The rest of a message arrives atomically with its first frame.
      (void)m_socket->recv(frame, zmq::recv_flags::dontwait);
      if (frame.more()) {
        well_formed = false;
        zmq::message_t extra;
        do {
          (void)m_socket->recv(extra, zmq::recv_flags::dontwait);
        } while (extra.more());
      }
    }
    if (!well_formed) {
      ++m_counters.dropped_in;
      ++m_counters.dropped_multipart;
      if (const auto n = detail::rate_limit(m_loop, m_last_warn_ms, m_suppressed_warnings); n >= 0) {
        spdlog::warn("transport: router dropped a message with a wrong frame count "
                     "({} similar warnings suppressed)", n);
      }
      if (m_on_refused) {
        try {
          // Last statement touching `this`: the callback may close this Router.
          m_on_refused(PeerId(routing_id.data<char>(), routing_id.size()),
                       "a message must be one frame (SPEC 3.1)");
        } catch (const std::exception& e) {
          spdlog::error("transport: router on_refused threw: {}", e.what());
        } catch (...) {
          spdlog::error("transport: router on_refused threw a non-exception");
        }
      }
      return true;
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("transport: router recv failed: {}", e.what());
    return false;
  }

  ++m_counters.frames_in;
  m_counters.bytes_in += frame.size();
  // The ZAP user id (the client's CURVE key) travels with every message.
  const char* user_id = zmq_msg_gets(frame.handle(), "User-Id");
  const PeerId peer(routing_id.data<char>(), routing_id.size());
  if (!m_on_message) return true;
  try {
    // Last statement touching `this`: the callback may close or even
    // destroy this Router.
    m_on_message(peer, user_id != nullptr ? std::string_view(user_id) : std::string_view(),
                 std::span<const std::uint8_t>(frame.data<std::uint8_t>(), frame.size()));
  } catch (const std::exception& e) {
    spdlog::error("transport: router on_message threw: {}", e.what());
    ++m_counters.dropped_in;
  } catch (...) {
    spdlog::error("transport: router on_message threw a non-exception");
    ++m_counters.dropped_in;
  }
  return true;
}

tl::expected<void, TransportError> Router::send(const PeerId& routing_id,
                                                std::span<const std::uint8_t> frame) {
  if (auto ok = detail::check_send(m_counters, m_socket.has_value(), "router is not bound", frame.size(),
                                   m_options.max_frame_bytes);
      !ok) {
    return ok;
  }
  void* handle = m_socket->handle();
  // With ROUTER_MANDATORY an unknown or full peer fails on the first frame,
  // so a half-sent message cannot happen.
  int rc = zmq_send(handle, routing_id.data(), routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT);
  if (rc >= 0) rc = zmq_send(handle, frame.data(), frame.size(), ZMQ_DONTWAIT);
  const int err_no = rc < 0 ? zmq_errno() : 0;
  if (m_poller) m_poller->after_send();
  return detail::finish_send(m_counters, rc, err_no, frame.size());
}

void Router::close() noexcept {
  if (m_poller) {
    m_poller->close();  // before the socket: the fd must leave epoll first
    m_poller = nullptr;
  }
  if (m_socket) {
    m_socket->close();
    m_socket.reset();
  }
}

}  // namespace tide::transport
