// ZmqPoller: drives one ZeroMQ socket from a libuv loop (internal to the
// transport; Router, Dealer and ZapHandler use it).
//
// ZMQ_FD is edge-triggered and only ever signals *readability* of the socket's
// command mailbox, never "a message is waiting". So:
//   - we watch UV_READABLE on it (even when we only want to write);
//   - on every wake-up we receive with ZMQ_DONTWAIT until EAGAIN (a failed
//     non-blocking receive processes the socket's commands, which is what
//     ZMQ_EVENTS would do, and re-arms the edge), at most kBatch messages per
//     callback; if the batch runs out we keep a uv_idle_t running so the loop
//     comes back at once without blocking;
//   - after every send the owner calls after_send(): zmq_send may have eaten
//     the edge, so a drain is scheduled for the next loop iteration.
// Getting this wrong either deadlocks (a missed edge) or spins at 100 % CPU.
//
// Lifetime: create with ZmqPoller::start(); call close() BEFORE closing the
// zmq socket. close() stops the handles at once (the fd leaves epoll before
// libzmq can close or reuse it); the object frees itself from the uv close
// callbacks, so the loop must run once more after close().
#pragma once

#include <cstddef>
#include <functional>

#include <tl/expected.hpp>
#include <uv.h>
#include <zmq.hpp>

#include "protocol/transport/common.hpp"

namespace tide::transport {

class ZmqPoller {
 public:
  static constexpr std::size_t kBatch = 256;  // messages per loop callback

  // Must receive (at most) one message with ZMQ_DONTWAIT and return true if
  // it got one, false on EAGAIN or error. It must not throw. It may close the
  // poller.
  using ReadableFn = std::function<bool()>;

  // Starts watching `socket` (which must outlive close()). Returns a pointer
  // the caller must eventually close(); never delete it.
  [[nodiscard]] static tl::expected<ZmqPoller*, TransportError> start(
      uv_loop_t* loop, zmq::socket_t& socket, ReadableFn on_readable);

  // Schedules a drain after a send on the socket (the send may have eaten the
  // edge). Cheap; call it after every send.
  void after_send() noexcept;

  // Stops watching. Idempotent. Safe to call from inside on_readable.
  void close() noexcept;

  [[nodiscard]] bool closed() const noexcept { return m_closed; }

  ZmqPoller(const ZmqPoller&) = delete;
  ZmqPoller& operator=(const ZmqPoller&) = delete;

 private:
  ZmqPoller(zmq::socket_t& socket, ReadableFn on_readable);
  ~ZmqPoller() = default;

  void drain() noexcept;
  void set_idle(bool on) noexcept;
  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_idle(uv_idle_t* handle);
  static void on_closed(uv_handle_t* handle);

  zmq::socket_t& m_socket;
  ReadableFn m_on_readable;
  uv_poll_t m_poll{};
  uv_idle_t m_idle{};
  bool m_idle_active = false;
  bool m_closed = false;
  int m_open_handles = 0;
};

}  // namespace tide::transport
