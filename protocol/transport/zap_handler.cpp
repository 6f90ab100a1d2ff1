#include "protocol/transport/zap_handler.hpp"

#include <array>
#include <vector>

#include <spdlog/spdlog.h>

#include "protocol/transport/curve.hpp"
#include "protocol/transport/detail.hpp"
#include "protocol/transport/zmq_poller.hpp"

namespace tide::transport {
namespace {

using Kind = TransportError::Kind;

constexpr std::size_t kMaxZapFrames = 16;  // a request has 6 + credentials (0..2)

std::string to_string(const zmq::message_t& frame) {
  return std::string(frame.data<char>(), frame.size());
}

// Parses ZAP 1.0 request frames; an empty optional means malformed.
std::optional<ZapRequest> parse_request(const std::vector<zmq::message_t>& frames,
                                        std::string& why) {
  if (frames.size() < 6) {
    why = "fewer than 6 frames";
    return std::nullopt;
  }
  if (to_string(frames[0]) != "1.0") {
    why = "version is not 1.0";
    return std::nullopt;
  }
  ZapRequest request;
  request.request_id = to_string(frames[1]);
  request.domain = to_string(frames[2]);
  request.address = to_string(frames[3]);
  request.routing_id = to_string(frames[4]);
  request.mechanism = to_string(frames[5]);
  if (request.mechanism == "CURVE") {
    if (frames.size() != 7 || frames[6].size() != kBinaryKeyLength) {
      why = "CURVE request without a 32-byte client key";
      return std::nullopt;
    }
    request.client_key_z85 = z85_from_binary_key(to_string(frames[6]));
  }
  return request;
}

}  // namespace

ZapHandler::ZapHandler(uv_loop_t* loop, zmq::context_t& context, DecideFn decide)
    : m_loop(loop), m_context(context), m_decide(std::move(decide)) {}

ZapHandler::~ZapHandler() { close(); }

tl::expected<void, TransportError> ZapHandler::bind() {
  if (m_socket) return tl::unexpected(TransportError{Kind::InvalidArgument, "already bound", 0});
  try {
    zmq::socket_t socket(m_context, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(kZapEndpoint);
    m_socket.emplace(std::move(socket));
  } catch (const zmq::error_t& e) {
    return tl::unexpected(detail::make_error(Kind::Io, std::string("bind ") + kZapEndpoint, e.num()));
  }
  auto poller = ZmqPoller::start(m_loop, *m_socket, [this] { return handle_one(); });
  if (!poller) {
    m_socket.reset();
    return tl::unexpected(poller.error());
  }
  m_poller = *poller;
  return {};
}

bool ZapHandler::handle_one() noexcept {
  std::vector<zmq::message_t> frames;
  try {
    zmq::message_t frame;
    if (!m_socket->recv(frame, zmq::recv_flags::dontwait)) return false;
    bool more = frame.more();
    frames.push_back(std::move(frame));
    while (more) {
      zmq::message_t next;
      (void)m_socket->recv(next, zmq::recv_flags::dontwait);
      more = next.more();
      if (frames.size() < kMaxZapFrames) frames.push_back(std::move(next));
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("transport: ZAP recv failed: {}", e.what());
    return false;
  }

  std::string status = "500";
  std::string status_text = "internal error";
  std::string user_id;
  std::string why;
  const auto request = parse_request(frames, why);
  if (!request) {
    ++m_counters.malformed;
    status_text = "malformed ZAP request: " + why;
    std::uint64_t suppressed = 0;
    if (detail::rate_limit(m_loop, m_last_warn_ms, suppressed) >= 0) {
      spdlog::warn("transport: {}", status_text);
    }
  } else {
    try {
      ZapDecision decision = m_decide ? m_decide(*request) : ZapDecision{};
      if (decision.allow) {
        status = "200";
        status_text = decision.status_text.empty() ? "OK" : decision.status_text;
        user_id = decision.user_id.empty() ? request->client_key_z85 : decision.user_id;
        ++m_counters.allowed;
      } else {
        status = "400";
        status_text = decision.status_text.empty() ? "refused" : decision.status_text;
        ++m_counters.refused;
      }
    } catch (const std::exception& e) {
      spdlog::error("transport: ZAP decision threw: {}", e.what());
      ++m_counters.refused;
    } catch (...) {
      spdlog::error("transport: ZAP decision threw a non-exception");
      ++m_counters.refused;
    }
  }
  if (m_poller == nullptr || m_poller->closed()) return false;  // closed by the callback

  // A REP socket must answer every request before it may receive the next;
  // libzmq fails the handshake on anything but "200".
  const std::string request_id = frames.size() > 1 ? to_string(frames[1]) : std::string();
  const std::array<std::string, 6> reply = {"1.0", request_id, status, status_text, user_id, ""};
  try {
    for (std::size_t i = 0; i < reply.size(); ++i) {
      const auto flags = i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      (void)m_socket->send(zmq::buffer(reply[i]), flags | zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("transport: ZAP reply failed: {}", e.what());
  }
  m_poller->after_send();
  return true;
}

void ZapHandler::close() noexcept {
  if (m_poller) {
    m_poller->close();
    m_poller = nullptr;
  }
  if (m_socket) {
    m_socket->close();
    m_socket.reset();
  }
}

}  // namespace tide::transport
