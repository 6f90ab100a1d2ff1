// tide-sample-app: the HTTP/1.1 application that tests and the demo run on
// instances. It listens from the first moment, but answers application
// requests with 503 until it decides it is ready, and counts every request that
// arrived too early: the system tests assert that the load balancer never sent
// one (DESIGN.md, "the single rule").
//
// One libuv loop, no threads. Keep-alive and pipelined requests are supported;
// a connection handles one request at a time, in order.
//
// Endpoints
//   GET  /                      200 naming the instance once ready, else 503
//                               (?delay_ms=N answers after N ms, ?cpu_ms=N burns CPU;
//                               --error-percent P answers 500 to P of every 100)
//   GET  /ready                 200 when ready, 503 otherwise
//   GET  /health                200
//   GET|POST /admin/ready?state=0|1   flips readiness at run time
//   GET  /stats                 {"requests","served_before_ready","ready","uptime_ms",
//                               "ready_unix_ms","first_served_unix_ms","requests_per_s","busy_pct",
//                               "errors",...}
// Any other path is treated as the application path "/".
//
// Load metrics. With $NOTIFY_SOCKET set (the tide-agent's notify socket), the
// application reports its own load every --metrics-interval-ms as custom
// metrics, one sd_notify datagram "METRIC=name=value" per metric:
//   app_requests_per_s  application requests answered per second
//   app_busy_pct        % of wall-clock time spent handling application
//                       requests (its one worker's utilisation; 100 = saturated)
// Both measure the demand on this application, not the host: other processes
// on the machine cannot raise them (the CPU burnt by ?cpu_ms is measured in
// wall-clock time, so a busy host does not shorten or lengthen it), which makes
// them the metrics the alarm tests and the demo scale on.
//
// SIGTERM / SIGINT: stop accepting, close idle connections, finish requests in
// flight (answering them with "Connection: close"), exit 0. A hard deadline
// (--drain-timeout-ms) closes whatever is left.
#include <uv.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include <CLI/CLI.hpp>

namespace {

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
constexpr std::uint64_t kMaxDelayMs = 600'000;

struct Options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  std::uint64_t ready_after_ms = 0;
  double cpu_ms_per_request = 0.0;
  std::uint32_t error_percent = 0;  // this share of application requests answers 500 (a bad version)
  std::string name = "sample";
  std::uint64_t drain_timeout_ms = 10'000;
  std::uint64_t metrics_interval_ms = 1000;  // 0: report no load metrics
  bool notify = true;
};

struct Server;

struct Conn {
  uv_tcp_t tcp{};
  uv_timer_t delay_timer{};
  Server* server = nullptr;
  std::string in;
  std::string delayed_response;  // written when delay_timer fires
  bool busy = false;             // a delayed response is pending
  bool close_after = false;      // close once the queued writes are done
  bool closing = false;
  int pending_writes = 0;
  int open_handles = 0;
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
  Conn* conn = nullptr;
};

struct Server {
  Options opt;
  uv_loop_t* loop = nullptr;
  uv_tcp_t listener{};
  uv_timer_t ready_timer{};
  uv_timer_t drain_deadline{};
  uv_timer_t metrics_timer{};
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  std::unordered_set<Conn*> conns;
  std::uint64_t start_ms = 0;
  std::uint64_t requests = 0;             // application requests answered 200
  std::uint64_t served_before_ready = 0;  // application requests that arrived before ready
  std::uint64_t total_requests = 0;       // every parsed request, any path
  std::uint64_t app_requests = 0;         // application requests handled while ready
  std::uint64_t errors = 0;               // of those, answered 500 (--error-percent)
  std::uint64_t busy_ns = 0;              // wall-clock time spent handling application requests
  // The load metrics: counters at the previous report, and the latest values.
  std::uint64_t metrics_at_ns = 0;
  std::uint64_t metrics_requests = 0;
  std::uint64_t metrics_busy_ns = 0;
  double requests_per_s = 0.0;
  double busy_pct = 0.0;
  bool metrics_failed = false;  // a report could not be sent (logged once)
  bool ready = false;
  bool stopping = false;
  // Wall-clock times (Unix epoch ms, 0 = not yet) of the latest flip to ready
  // and of the first application request answered 200 after it: benchmarks
  // compare them across processes ("ready to first request served").
  std::uint64_t ready_unix_ms = 0;
  std::uint64_t first_served_unix_ms = 0;
  std::string bound_address;
  int bound_port = 0;
};

// ---- helpers ----------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || !(v >= 0.0)) return std::nullopt;
  return v;
}

// Returns the value of `key` in a query string "a=1&b=2", if present.
std::optional<std::string_view> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string make_response(const Server& s, int status, std::string_view content_type,
                          std::string_view body, bool keep_alive, bool head) {
  std::string r;
  r.reserve(160 + body.size());
  r += "HTTP/1.1 ";
  r += std::to_string(status);
  r += ' ';
  r += reason_phrase(status);
  r += "\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += "\r\nX-Instance: ";
  r += s.opt.name;
  r += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// $NOTIFY_SOCKET, or nullptr when notifications are off or it is not set.
const char* notify_socket(const Server& s) {
  if (!s.opt.notify) return nullptr;
  const char* path = std::getenv("NOTIFY_SOCKET");
  return path == nullptr || path[0] == '\0' ? nullptr : path;
}

// Sends one sd_notify datagram to $NOTIFY_SOCKET, if set. Best effort: the
// application keeps running whatever happens to the notification. Returns
// errno of a failed send (0: sent or nothing to do).
int send_notify(const Server& s, const char* text) {
  const char* path = notify_socket(s);
  if (path == nullptr) return 0;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof sa.sun_path) return ENAMETOOLONG;
  std::memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  auto sa_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int err = 0;
  if (::sendto(fd, text, std::strlen(text), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), sa_len) < 0) {
    err = errno;
  }
  ::close(fd);
  return err;
}

void sd_notify(const Server& s, const char* text) {
  if (const int err = send_notify(s, text); err != 0) {
    std::fprintf(stderr, "tide-sample-app: NOTIFY_SOCKET %s: %s\n", notify_socket(s), std::strerror(err));
  }
}

// Every --metrics-interval-ms: the load since the previous report, sent as
// custom metrics. The agent may bind its socket after the application starts,
// so a failed send is logged once and tried again at the next interval.
void on_metrics_timer(uv_timer_t* t) {
  auto& s = *static_cast<Server*>(t->data);
  const std::uint64_t now = uv_hrtime();
  const std::uint64_t elapsed_ns = now - s.metrics_at_ns;
  if (elapsed_ns == 0) return;
  s.requests_per_s = static_cast<double>(s.requests - s.metrics_requests) * 1e9 / static_cast<double>(elapsed_ns);
  // A request handled across the boundary counts in the interval it ended in.
  s.busy_pct = std::min(100.0, 100.0 * static_cast<double>(s.busy_ns - s.metrics_busy_ns) / static_cast<double>(elapsed_ns));
  s.metrics_at_ns = now;
  s.metrics_requests = s.requests;
  s.metrics_busy_ns = s.busy_ns;
  char text[128];
  std::snprintf(text, sizeof text, "METRIC=app_requests_per_s=%.1f\nMETRIC=app_busy_pct=%.1f", s.requests_per_s,
                s.busy_pct);
  const int err = send_notify(s, text);
  if (err != 0 && !s.metrics_failed) {
    std::fprintf(stderr, "tide-sample-app: cannot report load metrics to NOTIFY_SOCKET %s: %s (retrying)\n",
                 notify_socket(s), std::strerror(err));
  }
  s.metrics_failed = err != 0;
}

std::uint64_t unix_ms() {
  uv_timeval64_t tv{};
  if (uv_gettimeofday(&tv) != 0) return 0;
  return static_cast<std::uint64_t>(tv.tv_sec) * 1000U + static_cast<std::uint64_t>(tv.tv_usec) / 1000U;
}

void set_ready(Server& s, bool ready) {
  if (s.ready == ready) return;
  s.ready = ready;
  if (ready) {
    s.ready_unix_ms = unix_ms();
    s.first_served_unix_ms = 0;
  }
  std::printf("tide-sample-app %s: %s\n", s.opt.name.c_str(), ready ? "ready" : "not ready");
  std::fflush(stdout);
  // READY=0 is tide's extension (agent/core/notify.hpp): without it an agent
  // that reads readiness from the notify socket would never see the flip back.
  sd_notify(s, ready ? "READY=1" : "READY=0\nSTATUS=not ready");
}

// ---- connections ------------------------------------------------------------

void maybe_finish_stop(Server& s);
void process_input(Conn* c);

void on_conn_handle_closed(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  if (--c->open_handles > 0) return;
  Server& s = *c->server;
  s.conns.erase(c);
  delete c;
  maybe_finish_stop(s);
}

void close_conn(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  uv_timer_stop(&c->delay_timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->delay_timer), on_conn_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_conn_handle_closed);
}

bool conn_idle(const Conn* c) { return !c->busy && c->pending_writes == 0 && c->in.empty(); }

void on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Conn* c = w->conn;
  delete w;
  c->pending_writes--;
  if (c->closing) return;
  if (status < 0) {
    close_conn(c);
    return;
  }
  if (c->pending_writes == 0 && (c->close_after || (c->server->stopping && conn_idle(c)))) {
    close_conn(c);
  }
}

void send_data(Conn* c, std::string data) {
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->conn = c;
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  c->pending_writes++;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_write);
  if (rc < 0) {
    c->pending_writes--;
    delete w;
    close_conn(c);
  }
}

void burn_cpu(double ms) {
  if (ms <= 0.0) return;
  const std::uint64_t start = uv_hrtime();
  const auto budget_ns = static_cast<std::uint64_t>(ms * 1e6);
  volatile std::uint64_t sink = 0;
  while (uv_hrtime() - start < budget_ns) {
    for (int i = 0; i < 1000; ++i) sink = sink + static_cast<std::uint64_t>(i);
  }
}

void on_delay_timer(uv_timer_t* t) {
  auto* c = static_cast<Conn*>(t->data);
  c->busy = false;
  send_data(c, std::move(c->delayed_response));
  c->delayed_response.clear();
  if (!c->closing) process_input(c);
}

struct Request {
  std::string_view method;
  std::string_view path;
  std::string_view query;
  bool keep_alive = true;
};

// Answers one complete request; marks the connection to close after the
// response when the request or a stop asks for it.
void handle_request(Conn* c, const Request& rq) {
  Server& s = *c->server;
  s.total_requests++;
  const bool keep_alive = rq.keep_alive && !s.stopping;
  if (!keep_alive) c->close_after = true;
  const bool head = rq.method == "HEAD";
  auto reply = [&](int status, std::string_view type, std::string_view body) {
    send_data(c, make_response(s, status, type, body, keep_alive, head));
  };

  if (rq.path == "/health") {
    reply(200, "text/plain", "ok\n");
  } else if (rq.path == "/ready") {
    if (s.ready) reply(200, "text/plain", "ready\n");
    else reply(503, "text/plain", "not ready\n");
  } else if (rq.path == "/stats") {
    std::string body = "{\"requests\":" + std::to_string(s.requests) +
                       ",\"served_before_ready\":" + std::to_string(s.served_before_ready) +
                       ",\"total_requests\":" + std::to_string(s.total_requests) +
                       ",\"errors\":" + std::to_string(s.errors) +
                       ",\"ready\":" + (s.ready ? "true" : "false") +
                       ",\"uptime_ms\":" + std::to_string(uv_now(s.loop) - s.start_ms) +
                       ",\"ready_unix_ms\":" + std::to_string(s.ready_unix_ms) +
                       ",\"first_served_unix_ms\":" + std::to_string(s.first_served_unix_ms) +
                       ",\"requests_per_s\":" + std::to_string(s.requests_per_s) +
                       ",\"busy_pct\":" + std::to_string(s.busy_pct) +
                       ",\"name\":\"" + json_escape(s.opt.name) + "\"" +
                       ",\"address\":\"" + json_escape(s.bound_address) + "\"" +
                       ",\"port\":" + std::to_string(s.bound_port) + "}\n";
    reply(200, "application/json", body);
  } else if (rq.path == "/admin/ready") {
    if (rq.method != "GET" && rq.method != "POST") {
      reply(405, "text/plain", "use GET or POST\n");
      return;
    }
    auto state = query_param(rq.query, "state");
    if (!state || (*state != "0" && *state != "1")) {
      reply(400, "text/plain", "state must be 0 or 1\n");
      return;
    }
    uv_timer_stop(&s.ready_timer);  // an explicit decision overrides the start-up delay
    set_ready(s, *state == "1");
    reply(200, "text/plain", s.ready ? "ready=1\n" : "ready=0\n");
  } else {
    // The application path.
    if (!s.ready) {
      s.served_before_ready++;
      reply(503, "text/plain", "not ready\n");
      return;
    }
    const std::uint64_t handling_since = uv_hrtime();
    double cpu_ms = s.opt.cpu_ms_per_request;
    if (auto v = query_param(rq.query, "cpu_ms")) {
      if (auto d = parse_double(*v); d && *d <= 10'000.0) cpu_ms = *d;
    }
    std::uint64_t delay_ms = 0;
    if (auto v = query_param(rq.query, "delay_ms")) {
      if (auto d = parse_u64(*v); d && *d <= kMaxDelayMs) delay_ms = *d;
    }
    burn_cpu(cpu_ms);
    // --error-percent: spread evenly, the k-th request fails when k * P / 100
    // passes a whole number, so any 100 requests in a row hold exactly P.
    const std::uint64_t k = ++s.app_requests;
    if ((k * s.opt.error_percent) / 100 > ((k - 1) * s.opt.error_percent) / 100) {
      s.errors++;
      reply(500, "text/plain", "injected error (--error-percent)\n");
      s.busy_ns += uv_hrtime() - handling_since;
      return;
    }
    s.requests++;
    if (s.first_served_unix_ms == 0) s.first_served_unix_ms = unix_ms();
    std::string body = "hello from " + s.opt.name + " (" + s.bound_address + ":" +
                       std::to_string(s.bound_port) + ")\n";
    if (delay_ms == 0) {
      reply(200, "text/plain", body);
    } else {
      c->busy = true;
      c->delayed_response = make_response(s, 200, "text/plain", body, keep_alive, head);
      uv_timer_start(&c->delay_timer, on_delay_timer, delay_ms, 0);
    }
    // A delay is waiting, not work: only the handling itself counts as busy.
    s.busy_ns += uv_hrtime() - handling_since;
  }
}

void fail_request(Conn* c, int status, std::string_view body) {
  c->close_after = true;
  c->in.clear();
  send_data(c, make_response(*c->server, status, "text/plain", body, false, false));
}

// Parses and answers as many complete requests as the buffer holds, one at a
// time: a delayed response holds back the requests pipelined after it.
void process_input(Conn* c) {
  while (!c->closing && !c->busy && !c->close_after && !c->in.empty()) {
    const std::string_view buf = c->in;
    const auto end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (buf.size() > kMaxHeaderBytes) fail_request(c, 431, "headers too large\n");
      return;
    }
    if (end > kMaxHeaderBytes) {
      fail_request(c, 431, "headers too large\n");
      return;
    }
    std::string_view head = buf.substr(0, end);
    const auto line_end = head.find("\r\n");
    std::string_view line = head.substr(0, line_end);
    std::string_view headers = line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);

    Request rq;
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0) {
      fail_request(c, 400, "bad request line\n");
      return;
    }
    rq.method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (target.empty() || (version != "HTTP/1.1" && version != "HTTP/1.0")) {
      fail_request(c, 400, "bad request line\n");
      return;
    }
    const auto qm = target.find('?');
    rq.path = target.substr(0, qm);
    rq.query = qm == std::string_view::npos ? std::string_view{} : target.substr(qm + 1);
    rq.keep_alive = version == "HTTP/1.1";

    std::uint64_t content_length = 0;
    while (!headers.empty()) {
      const auto eol = headers.find("\r\n");
      std::string_view h = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      const auto colon = h.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        fail_request(c, 400, "bad header\n");
        return;
      }
      std::string_view name = h.substr(0, colon);
      std::string_view value = trim(h.substr(colon + 1));
      if (iequals(name, "content-length")) {
        auto v = parse_u64(value);
        if (!v) {
          fail_request(c, 400, "bad content-length\n");
          return;
        }
        if (*v > kMaxBodyBytes) {
          fail_request(c, 413, "body too large\n");
          return;
        }
        content_length = *v;
      } else if (iequals(name, "transfer-encoding")) {
        fail_request(c, 501, "transfer-encoding is not supported\n");
        return;
      } else if (iequals(name, "connection")) {
        if (iequals(value, "close")) rq.keep_alive = false;
        else if (iequals(value, "keep-alive")) rq.keep_alive = true;
      }
    }
    const std::size_t total = end + 4 + static_cast<std::size_t>(content_length);
    if (c->in.size() < total) return;  // wait for the body

    // The views point into c->in; copy the request out before consuming it.
    std::string method(rq.method), path(rq.path), query(rq.query);
    c->in.erase(0, total);
    Request owned{method, path, query, rq.keep_alive};
    handle_request(c, owned);
  }
}

void on_alloc(uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(stream->data);
  std::unique_ptr<char[]> owned(buf->base);
  if (nread < 0) {
    close_conn(c);
    return;
  }
  if (nread == 0 || c->closing) return;
  if (c->close_after) return;  // the connection is finishing; ignore what follows
  c->in.append(buf->base, static_cast<std::size_t>(nread));
  if (c->in.size() > kMaxHeaderBytes + kMaxBodyBytes + 8) {
    fail_request(c, 413, "request too large\n");
    return;
  }
  process_input(c);
}

void on_connection(uv_stream_t* listener, int status) {
  auto* s = static_cast<Server*>(listener->data);
  if (status < 0 || s->stopping) return;
  auto* c = new Conn;
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->delay_timer);
  c->tcp.data = c;
  c->delay_timer.data = c;
  c->open_handles = 2;
  s->conns.insert(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) < 0) {
    close_conn(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

// ---- start and stop ---------------------------------------------------------

void on_ready_timer(uv_timer_t* t) { set_ready(*static_cast<Server*>(t->data), true); }

void maybe_finish_stop(Server& s) {
  if (!s.stopping || !s.conns.empty()) return;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&s.drain_deadline))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s.drain_deadline), nullptr);
  }
}

void on_drain_deadline(uv_timer_t* t) {
  auto* s = static_cast<Server*>(t->data);
  std::fprintf(stderr, "tide-sample-app: drain deadline passed, closing %zu connections\n", s->conns.size());
  auto copy = s->conns;
  for (Conn* c : copy) close_conn(c);
}

void on_signal(uv_signal_t* sig, int signum) {
  auto* s = static_cast<Server*>(sig->data);
  if (s->stopping) return;
  s->stopping = true;
  std::printf("tide-sample-app %s: signal %d, stopping\n", s->opt.name.c_str(), signum);
  std::fflush(stdout);
  sd_notify(*s, "STOPPING=1");
  uv_close(reinterpret_cast<uv_handle_t*>(&s->listener), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->ready_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->metrics_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->sigint), nullptr);
  auto copy = s->conns;
  // Idle connections close now. The others finish their request (a partial
  // one included) and close after the response, which says "Connection: close".
  for (Conn* c : copy) {
    if (conn_idle(c)) close_conn(c);
  }
  uv_timer_start(&s->drain_deadline, on_drain_deadline, s->opt.drain_timeout_ms, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&s->drain_deadline));
  maybe_finish_stop(*s);
}

int run(Server& s) {
  s.loop = uv_default_loop();
  s.start_ms = uv_now(s.loop);

  int rc = 0;
  sockaddr_storage addr{};
  if (s.opt.address.find(':') != std::string::npos) {
    rc = uv_ip6_addr(s.opt.address.c_str(), s.opt.port, reinterpret_cast<sockaddr_in6*>(&addr));
  } else {
    rc = uv_ip4_addr(s.opt.address.c_str(), s.opt.port, reinterpret_cast<sockaddr_in*>(&addr));
  }
  if (rc < 0) {
    std::fprintf(stderr, "tide-sample-app: bad --address '%s': %s\n", s.opt.address.c_str(), uv_strerror(rc));
    return 2;
  }
  uv_tcp_init(s.loop, &s.listener);
  s.listener.data = &s;
  rc = uv_tcp_bind(&s.listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s.listener), 1024, on_connection);
  if (rc < 0) {
    std::fprintf(stderr, "tide-sample-app: cannot listen on %s:%u: %s\n", s.opt.address.c_str(),
                 static_cast<unsigned>(s.opt.port), uv_strerror(rc));
    return 1;
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&s.listener, reinterpret_cast<sockaddr*>(&bound), &len);
  char ip[64] = {};
  if (bound.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&bound);
    uv_ip6_name(a6, ip, sizeof ip);
    s.bound_port = ntohs(a6->sin6_port);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&bound);
    uv_ip4_name(a4, ip, sizeof ip);
    s.bound_port = ntohs(a4->sin_port);
  }
  s.bound_address = ip;

  uv_timer_init(s.loop, &s.ready_timer);
  uv_timer_init(s.loop, &s.drain_deadline);
  uv_timer_init(s.loop, &s.metrics_timer);
  s.ready_timer.data = &s;
  s.drain_deadline.data = &s;
  s.metrics_timer.data = &s;
  if (s.opt.metrics_interval_ms > 0 && notify_socket(s) != nullptr) {
    s.metrics_at_ns = uv_hrtime();
    uv_timer_start(&s.metrics_timer, on_metrics_timer, s.opt.metrics_interval_ms, s.opt.metrics_interval_ms);
  }
  uv_signal_init(s.loop, &s.sigterm);
  uv_signal_init(s.loop, &s.sigint);
  s.sigterm.data = &s;
  s.sigint.data = &s;
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_signal, SIGINT);

  // Tests read this line to learn the port when they pass --port 0.
  std::printf("tide-sample-app %s: listening on %s:%d\n", s.opt.name.c_str(), s.bound_address.c_str(), s.bound_port);
  std::fflush(stdout);

  if (s.opt.ready_after_ms == 0) set_ready(s, true);
  else uv_timer_start(&s.ready_timer, on_ready_timer, s.opt.ready_after_ms, 0);

  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  std::printf("tide-sample-app %s: stopped after %llu requests\n", s.opt.name.c_str(),
              static_cast<unsigned long long>(s.requests));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Server s;
  CLI::App app{"tide-sample-app: an HTTP/1.1 application for tide's tests and demo"};
  app.add_option("--address", s.opt.address, "address to listen on")->envname("TIDE_INSTANCE_ADDRESS");
  app.add_option("--port", s.opt.port, "TCP port (0: any free port)")->envname("TIDE_INSTANCE_PORT");
  app.add_option("--ready-after-ms", s.opt.ready_after_ms, "start-up delay before the application is ready")
      ->envname("SAMPLE_READY_AFTER_MS");
  app.add_option("--cpu-ms-per-request", s.opt.cpu_ms_per_request, "CPU time burnt per application request")
      ->envname("SAMPLE_CPU_MS")
      ->check(CLI::Range(0.0, 10'000.0));
  app.add_option("--error-percent", s.opt.error_percent, "answer 500 to this share of application requests")
      ->check(CLI::Range(0U, 100U));
  app.add_option("--name", s.opt.name, "instance name shown in responses")->envname("TIDE_INSTANCE_ID");
  app.add_option("--drain-timeout-ms", s.opt.drain_timeout_ms, "on SIGTERM, longest wait for requests in flight");
  app.add_option("--metrics-interval-ms", s.opt.metrics_interval_ms,
                 "report app_requests_per_s and app_busy_pct to $NOTIFY_SOCKET this often (0: never)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{3'600'000}));
  app.add_flag("!--no-notify", s.opt.notify, "send nothing (READY=1, metrics) to $NOTIFY_SOCKET");
  CLI11_PARSE(app, argc, argv);
  return run(s);
}
