#include "agent/io/probes.hpp"

#include <array>
#include <charconv>
#include <cstring>

#include "agent/io/process.hpp"
#include "common/process/sigpipe.hpp"

namespace tide::agent {
namespace {

struct Endpoint {
  sockaddr_storage addr{};
  std::string host;
};

// "host:port" or "[v6]:port"; host an IP literal or localhost.
bool parse_host_port(std::string_view text, Endpoint& out, std::string& error) {
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "bad address '" + std::string(text) + "'";
      return false;
    }
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = "address '" + std::string(text) + "' has no port";
      return false;
    }
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  int p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || ptr != port.data() + port.size() || p <= 0 || p > 65535) {
    error = "bad port '" + std::string(port) + "'";
    return false;
  }
  out.host = host;
  if (host == "localhost") host = "127.0.0.1";
  if (uv_ip4_addr(host.c_str(), p, reinterpret_cast<sockaddr_in*>(&out.addr)) != 0 &&
      uv_ip6_addr(host.c_str(), p, reinterpret_cast<sockaddr_in6*>(&out.addr)) != 0) {
    error = "host '" + host + "' is not an IP address";
    return false;
  }
  return true;
}

// One TCP (and optionally HTTP) attempt. Owns its handles; frees itself once
// both are closed.
struct NetAttempt {
  uv_loop_t* loop = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_connect_t connect{};
  uv_write_t write{};
  std::string request;  // empty: TCP probe
  std::string response;
  std::array<char, 512> buffer{};
  ProbeDoneFn done;
  std::uint64_t started_ms = 0;
  int open_handles = 2;
  bool finished = false;

  void finish(bool success, std::string message) {
    if (finished) return;
    finished = true;
    ProbeOutcome o{success, std::move(message),
                   static_cast<std::uint32_t>(uv_now(loop) - started_ms)};
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
    auto cb = std::move(done);
    if (cb) cb(o);
  }

  static void on_closed(uv_handle_t* handle) {
    auto* a = static_cast<NetAttempt*>(handle->data);
    if (--a->open_handles == 0) delete a;
  }
  static void on_timeout(uv_timer_t* t) {
    static_cast<NetAttempt*>(t->data)->finish(false, "timed out");
  }
  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* a = static_cast<NetAttempt*>(h->data);
    *buf = uv_buf_init(a->buffer.data(), static_cast<unsigned>(a->buffer.size()));
  }
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* a = static_cast<NetAttempt*>(s->data);
    if (a->finished) return;
    if (nread > 0) a->response.append(buf->base, static_cast<std::size_t>(nread));
    const auto eol = a->response.find("\r\n");
    if (eol == std::string::npos && nread >= 0 && a->response.size() < 256) return;
    // "HTTP/1.x NNN reason"
    const std::string_view line(a->response.data(),
                                eol == std::string::npos ? a->response.size() : eol);
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
      a->finish(false, nread < 0 && a->response.empty() ? "connection closed without a response"
                                                        : "malformed status line");
      return;
    }
    int status = 0;
    auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
    if (ec != std::errc{} || p != line.data() + 12) {
      a->finish(false, "malformed status code");
      return;
    }
    a->finish(status >= 200 && status < 400, "HTTP " + std::to_string(status));
  }
  static void on_write(uv_write_t* w, int status) {
    auto* a = static_cast<NetAttempt*>(w->data);
    if (a->finished) return;
    if (status < 0) a->finish(false, std::string("write: ") + uv_strerror(status));
  }
  static void on_connect(uv_connect_t* c, int status) {
    auto* a = static_cast<NetAttempt*>(c->data);
    if (a->finished) return;
    if (status < 0) {
      a->finish(false, std::string("connect: ") + uv_strerror(status));
      return;
    }
    if (a->request.empty()) {
      a->finish(true, "connected");
      return;
    }
    uv_buf_t buf = uv_buf_init(a->request.data(), static_cast<unsigned>(a->request.size()));
    a->write.data = a;
    int rc = uv_write(&a->write, reinterpret_cast<uv_stream_t*>(&a->tcp), &buf, 1, on_write);
    if (rc == 0) rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&a->tcp), on_alloc, on_read);
    if (rc != 0) a->finish(false, std::string("write: ") + uv_strerror(rc));
  }
};

void net_attempt(uv_loop_t* loop, const Endpoint& ep, std::string request, std::uint32_t timeout_ms,
                 ProbeDoneFn done) {
  // An application that closes the connection before reading the request
  // must fail the probe, not kill the agent.
  ignore_sigpipe();
  auto* a = new NetAttempt;
  a->loop = loop;
  a->request = std::move(request);
  a->done = std::move(done);
  a->started_ms = uv_now(loop);
  a->tcp.data = a;
  a->timer.data = a;
  a->connect.data = a;
  uv_tcp_init(loop, &a->tcp);
  uv_timer_init(loop, &a->timer);
  uv_timer_start(&a->timer, NetAttempt::on_timeout, timeout_ms, 0);
  const int rc = uv_tcp_connect(&a->connect, &a->tcp, reinterpret_cast<const sockaddr*>(&ep.addr),
                                NetAttempt::on_connect);
  if (rc != 0) a->finish(false, std::string("connect: ") + uv_strerror(rc));
}

}  // namespace

void http_probe(uv_loop_t* loop, const std::string& url, std::uint32_t timeout_ms,
                ProbeDoneFn done) {
  std::string_view rest(url);
  if (rest.substr(0, 7) != "http://") {
    done(ProbeOutcome{false, "url must start with http://", 0});
    return;
  }
  rest.remove_prefix(7);
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host_port(authority);
  if (host_port.find(':') == std::string::npos ||
      (host_port.front() == '[' && host_port.back() == ']')) {
    host_port += ":80";
  }
  Endpoint ep;
  std::string error;
  if (!parse_host_port(host_port, ep, error)) {
    done(ProbeOutcome{false, error, 0});
    return;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + std::string(authority) +
                        "\r\nUser-Agent: tide-agent\r\nConnection: close\r\n\r\n";
  net_attempt(loop, ep, std::move(request), timeout_ms, std::move(done));
}

void tcp_probe(uv_loop_t* loop, const std::string& address, std::uint32_t timeout_ms,
               ProbeDoneFn done) {
  Endpoint ep;
  std::string error;
  if (!parse_host_port(address, ep, error)) {
    done(ProbeOutcome{false, error, 0});
    return;
  }
  net_attempt(loop, ep, {}, timeout_ms, std::move(done));
}

void exec_probe(uv_loop_t* loop, const std::string& command, std::uint32_t timeout_ms,
                ProbeDoneFn done) {
  run_process(loop, command, timeout_ms, 256, [done = std::move(done)](const ProcessResult& r) {
    ProbeOutcome o;
    o.latency_ms = static_cast<std::uint32_t>(r.duration_ms);
    o.success = r.exit_status == 0 && !r.timed_out;
    if (r.timed_out)
      o.message = "timed out";
    else if (!r.error.empty())
      o.message = r.error;
    else
      o.message = "exit " + std::to_string(r.exit_status);
    done(o);
  });
}

ProbeRunner::ProbeRunner(uv_loop_t* loop, ProbeConfig config, ProbeTiming timing,
                         ProbeResultFn on_result)
    : m_loop(loop),
      m_config(std::move(config)),
      m_timing(timing),
      m_on_result(std::move(on_result)),
      m_timer(new uv_timer_t),
      m_alive(std::make_shared<bool>(true)) {
  uv_timer_init(m_loop, m_timer);
  m_timer->data = this;
}

ProbeRunner::~ProbeRunner() {
  stop();
  m_timer->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(m_timer),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void ProbeRunner::start() {
  uv_update_time(m_loop);
  m_schedule.emplace(m_timing, uv_now(m_loop));
  arm();
}

void ProbeRunner::stop() {
  uv_timer_stop(m_timer);
  m_schedule.reset();
  *m_alive = false;
  m_alive = std::make_shared<bool>(true);
}

void ProbeRunner::arm() {
  if (!m_schedule || m_schedule->in_flight()) return;
  const std::uint64_t now = uv_now(m_loop);
  const std::uint64_t next = m_schedule->next_attempt_ms();
  uv_timer_start(m_timer, on_timer, next > now ? next - now : 0, 0);
}

void ProbeRunner::on_timer(uv_timer_t* timer) {
  if (auto* self = static_cast<ProbeRunner*>(timer->data)) self->attempt();
}

void ProbeRunner::attempt() {
  if (!m_schedule) return;
  const std::uint64_t now = uv_now(m_loop);
  // The previous attempt is still bounded by its timeout; never stack them.
  if (!m_schedule->due(now)) return arm();
  m_schedule->attempt_started(now);
  // May run before the probe function returns (a bad address fails at once).
  auto done = [this, alive = m_alive](const ProbeOutcome& o) {
    if (*alive) finished(o);
  };
  switch (m_config.kind) {
    case protocol::ProbeKind::Http:
      http_probe(m_loop, m_config.url, m_config.timeout_ms, done);
      break;
    case protocol::ProbeKind::Tcp:
      tcp_probe(m_loop, m_config.address, m_config.timeout_ms, done);
      break;
    case protocol::ProbeKind::Exec:
      exec_probe(m_loop, m_config.command, m_config.timeout_ms, done);
      break;
    case protocol::ProbeKind::Notify:
      // Not a probe: the notify socket feeds readiness itself. Never runs again.
      m_schedule.reset();
      break;
  }
}

void ProbeRunner::finished(const ProbeOutcome& outcome) {
  auto alive = m_alive;
  const bool passing = m_on_result(outcome);
  // on_result may have stopped (or destroyed) this runner.
  if (!*alive || !m_schedule) return;
  uv_update_time(m_loop);
  m_schedule->attempt_finished(uv_now(m_loop), passing);
  arm();
}

}  // namespace tide::agent
