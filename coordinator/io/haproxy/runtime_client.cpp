#include "coordinator/io/haproxy/runtime_client.hpp"

#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "common/process/sigpipe.hpp"

namespace tide::haproxy {

std::string_view to_string(ApiError::Kind kind) {
  switch (kind) {
    case ApiError::Kind::Connect:
      return "connect";
    case ApiError::Kind::Timeout:
      return "timeout";
    case ApiError::Kind::Disconnected:
      return "disconnected";
    case ApiError::Kind::Rejected:
      return "rejected";
    case ApiError::Kind::BadAnswer:
      return "bad answer";
    case ApiError::Kind::BadCommand:
      return "bad command";
    case ApiError::Kind::Closed:
      return "closed";
  }
  return "unknown";
}

// One connection attempt. It outlives the client if need be: the client
// detaches it (owner = nullptr) and the close callback frees it.
struct RuntimeClient::Conn {
  union {
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  } h{};
  uv_connect_t connect_req{};
  RuntimeClient* owner = nullptr;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h); }
};

struct RuntimeClient::Write {
  uv_write_t req{};
  std::string data;
  Conn* conn = nullptr;
};

namespace {

constexpr std::uint64_t kTickMs = 20;

void close_and_delete_timer(uv_timer_t* t) {
  if (t == nullptr) return;
  t->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(t),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace

RuntimeClient::RuntimeClient(uv_loop_t* loop, Options options)
    : m_loop(loop), m_options(std::move(options)) {
  // A command written while HAProxy goes away must fail, not kill us.
  ignore_sigpipe();
  m_tick = new uv_timer_t;
  uv_timer_init(m_loop, m_tick);
  m_tick->data = this;
  m_defer = new uv_timer_t;
  uv_timer_init(m_loop, m_defer);
  m_defer->data = this;
}

RuntimeClient::~RuntimeClient() {
  if (m_state != State::Closed) {
    // Callbacks are not run from a destructor: close() is the way to fail them.
    m_queue.clear();
    m_in_flight.clear();
    m_deferred.clear();
    close();
  }
}

void RuntimeClient::send(std::string command, Callback cb) {
  if (m_state == State::Closed) {
    defer(std::move(cb), tl::make_unexpected(ApiError{ApiError::Kind::Closed, "client closed"}));
    return;
  }
  if (command.empty() || command.find_first_of("\r\n;") != std::string::npos) {
    defer(std::move(cb),
          tl::make_unexpected(
              ApiError{ApiError::Kind::BadCommand, "command is empty or holds a newline or ';'"}));
    return;
  }
  m_queue.push_back(Pending{std::move(command), std::move(cb), {}, 0, 0});
  if (m_state == State::Idle)
    connect();
  else
    flush();
}

void RuntimeClient::send_with_payload(std::string command, const std::string& payload,
                                      Callback cb) {
  std::string lines;
  std::size_t at = 0;
  while (at < payload.size()) {
    std::size_t end = payload.find('\n', at);
    if (end == std::string::npos) end = payload.size();
    std::string line = payload.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines += line + "\n";
    at = end + 1;
  }
  const bool marked = command.size() > 3 && command.compare(command.size() - 3, 3, " <<") == 0;
  if (!marked || lines.empty() || command.find_first_of("\r\n;") != std::string::npos) {
    defer(std::move(cb),
          tl::make_unexpected(ApiError{ApiError::Kind::BadCommand,
                                       "a payload command ends with ' <<' and carries a payload"}));
    return;
  }
  auto strip = [cb = std::move(cb)](Answer answer) {
    if (answer) {
      std::size_t skip = 0;
      while (answer->compare(skip, 2, "+ ") == 0) skip += 2;
      answer->erase(0, skip);
    }
    if (cb) cb(std::move(answer));
  };
  if (m_state == State::Closed) {
    defer(std::move(strip), tl::make_unexpected(ApiError{ApiError::Kind::Closed, "client closed"}));
    return;
  }
  m_queue.push_back(Pending{std::move(command), std::move(strip), std::move(lines), 0, 0});
  if (m_state == State::Idle)
    connect();
  else
    flush();
}

void RuntimeClient::defer(Callback cb, Answer answer) {
  m_deferred.emplace_back(std::move(cb), std::move(answer));
  if (m_defer != nullptr) {
    uv_timer_start(
        m_defer,
        [](uv_timer_t* t) {
          if (t->data != nullptr) static_cast<RuntimeClient*>(t->data)->run_deferred();
        },
        0, 0);
  }
}

void RuntimeClient::run_deferred() {
  auto items = std::move(m_deferred);
  m_deferred.clear();
  for (auto& [cb, answer] : items) {
    if (cb) cb(std::move(answer));
  }
}

void RuntimeClient::connect() {
  auto* c = new Conn;
  c->owner = this;
  c->connect_req.data = c;
  m_conn = c;
  m_state = State::Connecting;
  m_in.clear();
  m_connect_started_ms = uv_now(m_loop);
  ++m_connects;
  uv_timer_start(
      m_tick,
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<RuntimeClient*>(t->data)->on_tick();
      },
      kTickMs, kTickMs);

  const std::string& ep = m_options.endpoint;
  int rc = 0;
  if (ep.rfind("tcp:", 0) == 0) {
    const auto colon = ep.rfind(':');
    std::string host = ep.substr(4, colon - 4);
    int port = colon > 4 ? std::atoi(ep.c_str() + colon + 1) : 0;
    sockaddr_in addr{};
    rc = (port > 0 && port < 65536) ? uv_ip4_addr(host.c_str(), port, &addr) : UV_EINVAL;
    uv_tcp_init(m_loop, &c->h.tcp);
    c->h.tcp.data = c;
    if (rc == 0)
      rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, reinterpret_cast<const sockaddr*>(&addr),
                          on_connect);
  } else {
    uv_pipe_init(m_loop, &c->h.pipe, 0);
    c->h.pipe.data = c;
    // uv_pipe_connect reports every failure through the callback.
    uv_pipe_connect(&c->connect_req, &c->h.pipe, ep.c_str(), on_connect);
  }
  if (rc < 0) {
    drop_connection(
        ApiError{ApiError::Kind::Connect, "bad endpoint '" + ep + "': " + uv_strerror(rc)}, false);
  }
}

void RuntimeClient::on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  RuntimeClient* self = c->owner;
  if (self == nullptr) return;  // abandoned attempt; its handle is closing
  if (status < 0) {
    self->drop_connection(
        ApiError{ApiError::Kind::Connect, self->m_options.endpoint + ": " + uv_strerror(status)},
        false);
    return;
  }
  self->m_state = State::Handshake;
  uv_read_start(
      c->stream(),
      [](uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
        buf->base = new char[suggested];
        buf->len = suggested;
      },
      on_read);
  // Switch the connection to interactive mode: it then stays open and every
  // answer ends with a prompt.
  auto* w = new Write;
  w->data = "prompt\n";
  w->conn = c;
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, c->stream(), &buf, 1, on_write) < 0) {
    delete w;
    self->drop_connection(ApiError{ApiError::Kind::Disconnected, "write failed"}, true);
  }
}

void RuntimeClient::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<Write*>(req->data);
  RuntimeClient* self = w->conn->owner;
  delete w;
  if (status < 0 && self != nullptr) {
    self->drop_connection(
        ApiError{ApiError::Kind::Disconnected, std::string("write: ") + uv_strerror(status)}, true);
  }
}

void RuntimeClient::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  std::unique_ptr<char[]> owned(buf->base);
  auto* c = static_cast<Conn*>(stream->data);
  RuntimeClient* self = c->owner;
  if (self == nullptr) return;
  if (nread < 0) {
    self->drop_connection(
        ApiError{ApiError::Kind::Disconnected, std::string("HAProxy closed the connection: ") +
                                                   uv_strerror(static_cast<int>(nread))},
        true);
    return;
  }
  if (nread > 0) self->on_data(std::string_view(buf->base, static_cast<std::size_t>(nread)));
}

void RuntimeClient::on_data(std::string_view data) {
  m_in.append(data);
  std::vector<std::pair<Callback, Answer>> done;
  while (true) {
    // An answer ends with "\n> " at the very start (empty answer) or right
    // after a newline (the answer's own last line).
    std::size_t pos = 0;
    bool found = false;
    while ((pos = m_in.find("\n> ", pos)) != std::string::npos) {
      if (pos == 0 || m_in[pos - 1] == '\n') {
        found = true;
        break;
      }
      ++pos;
    }
    if (!found) break;
    std::string answer = m_in.substr(0, pos);
    m_in.erase(0, pos + 3);
    if (m_state == State::Handshake) {
      m_state = State::Open;
      continue;
    }
    if (m_in_flight.empty()) {
      // HAProxy never speaks unasked; losing track of the framing means the
      // connection cannot be trusted.
      drop_connection(ApiError{ApiError::Kind::BadAnswer, "unsolicited answer"}, true);
      break;
    }
    Pending p = std::move(m_in_flight.front());
    m_in_flight.pop_front();
    done.emplace_back(std::move(p.cb), std::move(answer));
  }
  if (m_in.size() > 16 * 1024 * 1024) {
    drop_connection(ApiError{ApiError::Kind::BadAnswer, "answer larger than 16 MiB"}, false);
  } else if (m_state == State::Open) {
    flush();
  }
  for (auto& [cb, answer] : done) {
    if (cb) cb(std::move(answer));
  }
}

void RuntimeClient::flush() {
  if (m_state != State::Open || m_conn == nullptr) return;
  std::string batch;
  const std::uint64_t now = uv_now(m_loop);
  while (!m_queue.empty() && m_in_flight.size() < m_options.max_in_flight) {
    Pending p = std::move(m_queue.front());
    m_queue.pop_front();
    batch += p.command;
    batch += '\n';
    if (!p.payload.empty()) batch += p.payload + "\n";
    p.sent_ms = now;
    p.attempts++;
    m_in_flight.push_back(std::move(p));
  }
  if (batch.empty()) return;
  auto* w = new Write;
  w->data = std::move(batch);
  w->conn = m_conn;
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, m_conn->stream(), &buf, 1, on_write) < 0) {
    delete w;
    drop_connection(ApiError{ApiError::Kind::Disconnected, "write failed"}, true);
  }
}

void RuntimeClient::on_tick() {
  const std::uint64_t now = uv_now(m_loop);
  const std::uint64_t limit = m_options.command_timeout_ms;
  if ((m_state == State::Connecting || m_state == State::Handshake) &&
      now - m_connect_started_ms > limit) {
    drop_connection(ApiError{ApiError::Kind::Connect, m_options.endpoint + ": no prompt within " +
                                                          std::to_string(limit) + " ms"},
                    false);
    return;
  }
  if (!m_in_flight.empty() && now - m_in_flight.front().sent_ms > limit) {
    // The framing is lost with the late answer: start over on a fresh connection.
    drop_connection(
        ApiError{ApiError::Kind::Timeout, "no answer to '" + m_in_flight.front().command +
                                              "' within " + std::to_string(limit) + " ms"},
        false);
    return;
  }
  if (m_state == State::Open && m_in_flight.empty() && m_queue.empty()) uv_timer_stop(m_tick);
}

void RuntimeClient::drop_connection(ApiError error, bool retry_in_flight) {
  if (m_conn != nullptr) {
    Conn* c = m_conn;
    m_conn = nullptr;
    c->owner = nullptr;
    if (!uv_is_closing(c->handle())) {
      uv_close(c->handle(), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
    }
  }
  m_in.clear();
  if (m_state == State::Closed) return;
  m_state = State::Idle;

  std::vector<std::pair<Callback, Answer>> failed;
  const bool connect_failed = error.kind == ApiError::Kind::Connect;
  // Commands in flight get one more attempt after a dropped connection.
  while (!m_in_flight.empty()) {
    Pending p = std::move(m_in_flight.back());
    m_in_flight.pop_back();
    if (retry_in_flight && p.attempts < 2) {
      m_queue.push_front(std::move(p));
    } else {
      failed.emplace_back(std::move(p.cb), tl::make_unexpected(error));
    }
  }
  if (connect_failed || error.kind == ApiError::Kind::Timeout) {
    // Nothing will get through soon: fail the queue rather than spin.
    for (auto& p : m_queue) failed.emplace_back(std::move(p.cb), tl::make_unexpected(error));
    m_queue.clear();
  }
  if (!m_queue.empty()) {
    connect();
  } else {
    uv_timer_stop(m_tick);
  }
  for (auto& [cb, answer] : failed) defer(std::move(cb), std::move(answer));
}

void RuntimeClient::reset() {
  if (m_state == State::Closed || m_state == State::Idle) return;
  drop_connection(ApiError{ApiError::Kind::Disconnected, "connection reset by tide"}, true);
}

void RuntimeClient::fail_all(const ApiError& error) {
  std::vector<Pending> all;
  for (auto& p : m_in_flight) all.push_back(std::move(p));
  for (auto& p : m_queue) all.push_back(std::move(p));
  m_in_flight.clear();
  m_queue.clear();
  for (auto& p : all) {
    if (p.cb) p.cb(tl::make_unexpected(error));
  }
}

void RuntimeClient::close() {
  if (m_state == State::Closed) return;
  m_state = State::Closed;  // first, so that drop_connection() does not reconnect
  drop_connection(ApiError{ApiError::Kind::Closed, "client closed"}, false);
  auto deferred = std::move(m_deferred);
  m_deferred.clear();
  close_and_delete_timer(m_tick);
  close_and_delete_timer(m_defer);
  m_tick = nullptr;
  m_defer = nullptr;
  for (auto& [cb, answer] : deferred) {
    if (cb) cb(std::move(answer));
  }
  fail_all(ApiError{ApiError::Kind::Closed, "client closed"});
}

}  // namespace tide::haproxy
