#include "protocol/transport/zmq_poller.hpp"

#include <spdlog/spdlog.h>

#include "protocol/transport/detail.hpp"

namespace tide::transport {

ZmqPoller::ZmqPoller(zmq::socket_t& socket, ReadableFn on_readable)
    : m_socket(socket), m_on_readable(std::move(on_readable)) {}

tl::expected<ZmqPoller*, TransportError> ZmqPoller::start(uv_loop_t* loop, zmq::socket_t& socket,
                                                          ReadableFn on_readable) {
  int fd = -1;
  std::size_t fd_size = sizeof(fd);
  if (zmq_getsockopt(socket.handle(), ZMQ_FD, &fd, &fd_size) != 0) {
    return tl::unexpected(
        detail::make_error(TransportError::Kind::Io, "getsockopt(ZMQ_FD)", zmq_errno()));
  }
  auto* self = new ZmqPoller(socket, std::move(on_readable));
  uv_idle_init(loop, &self->m_idle);  // cannot fail on Unix
  self->m_idle.data = self;
  self->m_open_handles = 1;
  int rc = uv_poll_init(loop, &self->m_poll, fd);
  if (rc == 0) {
    self->m_poll.data = self;
    self->m_open_handles = 2;
    // UV_READABLE only: ZMQ_FD never signals writability, even for sends.
    rc = uv_poll_start(&self->m_poll, UV_READABLE, &ZmqPoller::on_poll);
  }
  if (rc != 0) {
    self->close();  // frees itself from the close callbacks
    return tl::unexpected(TransportError{TransportError::Kind::Io,
                                         std::string("uv_poll on ZMQ_FD: ") + uv_strerror(rc), rc});
  }
  // Messages may already be waiting (the edge may have fired before we
  // watched the fd): look once on the next loop iteration.
  self->set_idle(true);
  return self;
}

void ZmqPoller::drain() noexcept {
  // A zmq_recv(ZMQ_DONTWAIT) that fails with EAGAIN has just processed the
  // socket's pending commands (emptying its mailbox, which re-arms ZMQ_FD)
  // and found nothing: that is the authoritative "drained". Reading
  // ZMQ_EVENTS before each receive would cost a poll() system call per
  // message for no extra safety.
  for (std::size_t i = 0; i < kBatch; ++i) {
    bool received = false;
    try {
      received = m_on_readable();
    } catch (...) {
      // The owners' callbacks are noexcept; this is only a safety net so
      // nothing escapes into libuv.
      received = false;
    }
    if (m_closed) return;  // the callback closed us; memory lives until on_closed
    if (!received) {
      set_idle(false);
      return;
    }
  }
  // Batch exhausted: come back on the next iteration without blocking, so one
  // busy socket cannot starve the rest of the loop.
  set_idle(true);
}

void ZmqPoller::after_send() noexcept {
  // zmq_send may have processed the mailbox and so eaten the edge of ZMQ_FD
  // while a message is waiting. Draining on the next loop iteration costs one
  // EAGAIN receive when nothing is there and catches that case (many sends in
  // one tick share one drain).
  set_idle(true);
}

void ZmqPoller::set_idle(bool on) noexcept {
  if (m_closed || on == m_idle_active) return;
  if (on) {
    uv_idle_start(&m_idle, &ZmqPoller::on_idle);
  } else {
    uv_idle_stop(&m_idle);
  }
  m_idle_active = on;
}

void ZmqPoller::close() noexcept {
  if (m_closed) return;
  m_closed = true;
  m_on_readable = nullptr;
  uv_idle_stop(&m_idle);
  uv_close(reinterpret_cast<uv_handle_t*>(&m_idle), &ZmqPoller::on_closed);
  if (m_open_handles == 2) {
    // uv_close stops the poll and removes the fd from epoll right now, before
    // the owner closes the zmq socket (whose fd libzmq may close or reuse).
    uv_close(reinterpret_cast<uv_handle_t*>(&m_poll), &ZmqPoller::on_closed);
  }
}

void ZmqPoller::on_poll(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<ZmqPoller*>(handle->data);
  if (status < 0) {
    // EBADF and the like: nothing sensible to do but log and try to read.
    spdlog::warn("transport: poll on ZMQ_FD failed: {}", uv_strerror(status));
  }
  self->drain();
}

void ZmqPoller::on_idle(uv_idle_t* handle) {
  static_cast<ZmqPoller*>(handle->data)->drain();
}

void ZmqPoller::on_closed(uv_handle_t* handle) {
  auto* self = static_cast<ZmqPoller*>(handle->data);
  if (--self->m_open_handles == 0) delete self;
}

}  // namespace tide::transport
