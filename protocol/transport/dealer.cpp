#include "protocol/transport/dealer.hpp"

#include <atomic>
#include <cstring>

#include <spdlog/spdlog.h>

#include "protocol/transport/detail.hpp"
#include "protocol/transport/zmq_poller.hpp"

namespace tide::transport {

using Kind = TransportError::Kind;

std::string_view to_string(DealerEvent event) {
  switch (event) {
    case DealerEvent::Connected: return "connected";
    case DealerEvent::Disconnected: return "disconnected";
    case DealerEvent::AuthFailed: return "auth_failed";
    case DealerEvent::HandshakeFailed: return "handshake_failed";
  }
  return "unknown";
}

Dealer::Dealer(uv_loop_t* loop, zmq::context_t& context, DealerOptions options)
    : m_loop(loop), m_context(context), m_options(std::move(options)) {}

Dealer::~Dealer() { close(); }

tl::expected<void, TransportError> Dealer::connect() {
  if (m_socket) return tl::unexpected(TransportError{Kind::InvalidArgument, "already connected", 0});
  if (m_options.curve) {
    const DealerCurve& curve = *m_options.curve;
    if (!is_valid_z85_key(curve.server_public_z85) || !is_valid_z85_key(curve.client.public_z85) ||
        !is_valid_z85_key(curve.client.secret_z85)) {
      return tl::unexpected(TransportError{Kind::InvalidArgument, "invalid CURVE key", 0});
    }
  }
  if (m_options.routing_id.size() > 255) {
    return tl::unexpected(TransportError{Kind::InvalidArgument, "routing id longer than 255 bytes", 0});
  }
  try {
    zmq::socket_t socket(m_context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    if (!m_options.routing_id.empty()) socket.set(zmq::sockopt::routing_id, m_options.routing_id);
    socket.set(zmq::sockopt::immediate, m_options.immediate);
    socket.set(zmq::sockopt::reconnect_ivl, m_options.reconnect_ivl_ms);
    socket.set(zmq::sockopt::reconnect_ivl_max, m_options.reconnect_ivl_max_ms);
    socket.set(zmq::sockopt::maxmsgsize, wire_frame_limit(m_options.max_frame_bytes, m_options.curve.has_value()));
    socket.set(zmq::sockopt::sndhwm, m_options.sndhwm);
    socket.set(zmq::sockopt::rcvhwm, m_options.rcvhwm);
    socket.set(zmq::sockopt::heartbeat_ivl, m_options.heartbeat_ivl_ms);
    socket.set(zmq::sockopt::heartbeat_timeout, m_options.heartbeat_timeout_ms);
    if (m_options.curve) {
      socket.set(zmq::sockopt::curve_serverkey, m_options.curve->server_public_z85);
      socket.set(zmq::sockopt::curve_publickey, m_options.curve->client.public_z85);
      socket.set(zmq::sockopt::curve_secretkey, m_options.curve->client.secret_z85);
    }
    if (m_options.monitor_events) {
      // inproc names are per context; a process-wide counter keeps them unique.
      static std::atomic<std::uint64_t> next_monitor{1};
      const std::string monitor_endpoint =
          "inproc://tide-dealer-monitor-" + std::to_string(next_monitor.fetch_add(1));
      const int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
      if (zmq_socket_monitor(socket.handle(), monitor_endpoint.c_str(), events) != 0) {
        throw zmq::error_t();
      }
      zmq::socket_t monitor(m_context, zmq::socket_type::pair);
      monitor.set(zmq::sockopt::linger, 0);
      monitor.connect(monitor_endpoint);
      m_monitor.emplace(std::move(monitor));
    }
    // Connect last so that the monitor sees the first handshake.
    socket.connect(m_options.endpoint);
    m_socket.emplace(std::move(socket));
  } catch (const zmq::error_t& e) {
    m_monitor.reset();
    const Kind kind =
        e.num() == EINVAL || e.num() == EPROTONOSUPPORT ? Kind::InvalidArgument : Kind::Io;
    return tl::unexpected(detail::make_error(kind, "dealer connect " + m_options.endpoint, e.num()));
  }
  auto poller = ZmqPoller::start(m_loop, *m_socket, [this] { return receive_one(); });
  if (!poller) {
    close();
    return tl::unexpected(poller.error());
  }
  m_poller = *poller;
  if (m_monitor) {
    auto monitor_poller =
        ZmqPoller::start(m_loop, *m_monitor, [this] { return receive_monitor_event(); });
    if (!monitor_poller) {
      close();
      return tl::unexpected(monitor_poller.error());
    }
    m_monitor_poller = *monitor_poller;
  }
  return {};
}

bool Dealer::receive_one() noexcept {
  zmq::message_t frame;
  try {
    if (!m_socket->recv(frame, zmq::recv_flags::dontwait)) return false;
    if (frame.more()) {
      // A ROUTER peer sends exactly one frame; a multipart message is not ours.
      zmq::message_t extra;
      do {
        (void)m_socket->recv(extra, zmq::recv_flags::dontwait);
      } while (extra.more());
      ++m_counters.dropped_in;
      ++m_counters.dropped_multipart;
      if (const auto n = detail::rate_limit(m_loop, m_last_warn_ms, m_suppressed_warnings);
          n >= 0) {
        spdlog::warn(
            "transport: dealer dropped a message with a wrong frame count "
            "({} similar warnings suppressed)",
            n);
      }
      return true;
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("transport: dealer recv failed: {}", e.what());
    return false;
  }
  ++m_counters.frames_in;
  m_counters.bytes_in += frame.size();
  if (!m_on_message) return true;
  try {
    // Last statement touching `this`: the callback may close the Dealer.
    m_on_message(std::span<const std::uint8_t>(frame.data<std::uint8_t>(), frame.size()));
  } catch (const std::exception& e) {
    spdlog::error("transport: dealer on_message threw: {}", e.what());
    ++m_counters.dropped_in;
  } catch (...) {
    spdlog::error("transport: dealer on_message threw a non-exception");
    ++m_counters.dropped_in;
  }
  return true;
}

bool Dealer::receive_monitor_event() noexcept {
  zmq::message_t header;
  zmq::message_t address;
  try {
    if (!m_monitor->recv(header, zmq::recv_flags::dontwait)) return false;
    // Monitor messages are [event (u16) + value (u32), endpoint].
    if (header.more()) (void)m_monitor->recv(address, zmq::recv_flags::dontwait);
  } catch (const zmq::error_t& e) {
    spdlog::error("transport: dealer monitor recv failed: {}", e.what());
    return false;
  }
  if (header.size() < sizeof(std::uint16_t) + sizeof(std::uint32_t)) return true;
  std::uint16_t event = 0;
  std::uint32_t value = 0;
  std::memcpy(&event, header.data(), sizeof(event));
  std::memcpy(&value, header.data<std::uint8_t>() + sizeof(event), sizeof(value));
  DealerEvent what = DealerEvent::Disconnected;
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: what = DealerEvent::Connected; break;
    case ZMQ_EVENT_DISCONNECTED: what = DealerEvent::Disconnected; break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      spdlog::warn("transport: {} refused our key (ZAP status {})", m_options.endpoint, value);
      what = DealerEvent::AuthFailed;
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: what = DealerEvent::HandshakeFailed; break;
    default: return true;  // not subscribed; ignore
  }
  if (!m_on_event) return true;
  try {
    m_on_event(what);
  } catch (const std::exception& e) {
    spdlog::error("transport: dealer on_event threw: {}", e.what());
  } catch (...) {
    spdlog::error("transport: dealer on_event threw a non-exception");
  }
  return true;
}

tl::expected<void, TransportError> Dealer::send(std::span<const std::uint8_t> frame) {
  if (auto ok = detail::check_send(m_counters, m_socket.has_value(), "dealer is not connected", frame.size(),
                                   m_options.max_frame_bytes);
      !ok) {
    return ok;
  }
  const int rc = zmq_send(m_socket->handle(), frame.data(), frame.size(), ZMQ_DONTWAIT);
  const int err_no = rc < 0 ? zmq_errno() : 0;
  if (m_poller) m_poller->after_send();
  return detail::finish_send(m_counters, rc, err_no, frame.size());
}

void Dealer::close() noexcept {
  // Pollers first: their fds must leave epoll before libzmq closes them.
  if (m_monitor_poller) {
    m_monitor_poller->close();
    m_monitor_poller = nullptr;
  }
  if (m_poller) {
    m_poller->close();
    m_poller = nullptr;
  }
  if (m_socket) {
    if (m_monitor) (void)zmq_socket_monitor(m_socket->handle(), nullptr, 0);
    m_socket->close();
    m_socket.reset();
  }
  if (m_monitor) {
    m_monitor->close();
    m_monitor.reset();
  }
}

}  // namespace tide::transport
