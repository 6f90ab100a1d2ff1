// Internal helpers of tide_transport (not part of the public API).
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

#include <uv.h>
#include <zmq.h>

#include <tl/expected.hpp>

#include "protocol/transport/common.hpp"

namespace tide::transport::detail {

[[nodiscard]] inline TransportError make_error(TransportError::Kind kind, std::string what,
                                               int error_number = 0) {
  if (error_number != 0) {
    what += ": ";
    what += zmq_strerror(error_number);
  }
  return TransportError{kind, std::move(what), error_number};
}

// Maps a zmq errno of a send to the transport's error kinds.
[[nodiscard]] inline TransportError send_error(int error_number) {
  switch (error_number) {
    case EHOSTUNREACH:
      return make_error(TransportError::Kind::PeerGone, "send: peer gone", error_number);
    case EAGAIN:
      return make_error(TransportError::Kind::WouldBlock, "send: would block", error_number);
    case ENOTSOCK:
    case ETERM:
      return make_error(TransportError::Kind::Closed, "send: socket closed", error_number);
    default:
      return make_error(TransportError::Kind::Io, "send", error_number);
  }
}

// Allows one warning per second; a peer can trigger these, so they must not
// flood the log. Returns how many were suppressed since the last one, or -1
// when this one is suppressed as well.
[[nodiscard]] inline std::int64_t rate_limit(uv_loop_t* loop, std::uint64_t& last_ms,
                                             std::uint64_t& suppressed) {
  const std::uint64_t now_ms = uv_now(loop);
  if (last_ms != 0 && now_ms - last_ms < 1000) {
    ++suppressed;
    return -1;
  }
  last_ms = now_ms == 0 ? 1 : now_ms;
  const auto n = static_cast<std::int64_t>(suppressed);
  suppressed = 0;
  return n;
}

void count_send_error(TransportCounters& counters, const TransportError& error) noexcept;

// What every send checks first: an open socket (`closed_text` says why not)
// and a frame within `max_frame_bytes`. Failures are counted.
[[nodiscard]] tl::expected<void, TransportError> check_send(TransportCounters& counters, bool open,
                                                            const char* closed_text, std::size_t frame_bytes,
                                                            std::int64_t max_frame_bytes);

// Counts the outcome of a zmq_send (rc < 0: failed with err_no).
[[nodiscard]] tl::expected<void, TransportError> finish_send(TransportCounters& counters, int rc, int err_no,
                                                             std::size_t frame_bytes);

}  // namespace tide::transport::detail
