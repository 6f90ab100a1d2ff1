#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

namespace tide::test {

std::uint64_t wall_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000u;
}

bool run_until(uv_loop_t* loop, const std::function<bool()>& pred, std::uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 2, 2);
  const auto deadline = wall_ms() + timeout_ms;
  bool ok = pred();
  while (!ok && wall_ms() < deadline) {
    uv_run(loop, UV_RUN_ONCE);
    ok = pred();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

void run_for(uv_loop_t* loop, std::uint64_t ms) {
  run_until(loop, [] { return false; }, ms);
}

TestCoordinator::TestCoordinator(uv_loop_t* loop, transport::CurveKeyPair server, int port)
    : m_loop(loop), m_server(std::move(server)), m_port(port) {}

TestCoordinator::~TestCoordinator() { stop(); }

void TestCoordinator::start() {
  m_context = std::make_unique<zmq::context_t>(1);
  m_zap = std::make_unique<transport::ZapHandler>(m_loop, *m_context, [this](const transport::ZapRequest& rq) {
    transport::ZapDecision d;
    d.allow = allowed_keys.empty() || allowed_keys.count(rq.client_key_z85) != 0;
    if (!d.allow) ++zap_refused;
    d.status_text = d.allow ? "OK" : "unknown key";
    return d;
  });
  if (!m_zap->bind()) throw std::runtime_error("zap bind");
  transport::RouterOptions options;
  options.endpoint = "tcp://127.0.0.1:" + (m_port == 0 ? std::string("*") : std::to_string(m_port));
  options.curve_server_secret_z85 = m_server.secret_z85;
  m_router = std::make_unique<transport::Router>(m_loop, *m_context, options);
  m_router->on_message([this](const transport::PeerId& id, std::string_view user, std::span<const std::uint8_t> frame) {
    auto decoded = protocol::decode(frame);
    if (!decoded) return;
    log.push_back(Received{id, std::string(user), *decoded, wall_ms()});
    peer = id;
    if (std::holds_alternative<protocol::Hello>(*decoded) && auto_welcome) {
      sessions.insert(id);
      protocol::Welcome w{"s" + std::to_string(++m_session_counter), report_interval_ms, heartbeat_interval_ms, liveness};
      (void)m_router->send(id, protocol::encode(w));
    } else if (std::holds_alternative<protocol::Report>(*decoded) && sessions.count(id) == 0) {
      (void)m_router->send(id, protocol::encode(protocol::Error{protocol::ErrorCode::UnknownSession, "no session", 0}));
    }
  });
  auto bound = m_router->bind();
  if (!bound) throw std::runtime_error("router bind: " + bound.error().detail);
  m_port = std::stoi(bound->substr(bound->rfind(':') + 1));
  m_heartbeat = new uv_timer_t;
  uv_timer_init(m_loop, m_heartbeat);
  m_heartbeat->data = this;
  uv_timer_start(m_heartbeat, [](uv_timer_t* t) {
    auto* self = static_cast<TestCoordinator*>(t->data);
    for (const auto& id : self->sessions) (void)self->m_router->send(id, protocol::encode(protocol::Heartbeat{}));
  }, heartbeat_interval_ms, heartbeat_interval_ms);
}

void TestCoordinator::stop() {
  if (m_heartbeat != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(m_heartbeat), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    m_heartbeat = nullptr;
  }
  if (m_router) m_router->close();
  if (m_zap) m_zap->close();
  uv_run(m_loop, UV_RUN_NOWAIT);
  m_router.reset();
  m_zap.reset();
  m_context.reset();
  sessions.clear();
}

bool TestCoordinator::send(const protocol::Message& m) { return send_raw(protocol::encode(m)); }

bool TestCoordinator::send_raw(const std::vector<std::uint8_t>& frame) {
  if (!m_router || peer.empty()) return false;
  return m_router->send(peer, frame).has_value();
}

Child::Child(uv_loop_t* loop, std::vector<std::string> args, std::map<std::string, std::string> env,
             bool capture_stdout)
    : m_loop(loop) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TIDE_", 5) != 0 && std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_strings.emplace_back(*e);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  m_process = new uv_process_t;
  m_process->data = this;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  if (capture_stdout) {
    m_pipe = new uv_pipe_t;
    uv_pipe_init(loop, m_pipe, 0);
    m_pipe->data = this;
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(m_pipe);
  } else {
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2;
  }
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t options{};
  options.file = argv[0];
  options.args = argv.data();
  options.env = envp.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  options.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
    auto* self = static_cast<Child*>(p->data);
    if (self == nullptr) return;
    self->m_exited = true;
    self->m_exit_status = signal != 0 ? -signal : status;
  };
  const int rc = uv_spawn(loop, m_process, &options);
  if (rc != 0) throw std::runtime_error(std::string("spawn ") + args[0] + ": " + uv_strerror(rc));
  if (m_pipe != nullptr) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(m_pipe),
                  [](uv_handle_t*, std::size_t, uv_buf_t* buf) {
                    static char storage[4096];
                    *buf = uv_buf_init(storage, sizeof storage);
                  },
                  [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                    auto* self = static_cast<Child*>(s->data);
                    if (self != nullptr && n > 0) self->m_output.append(buf->base, static_cast<std::size_t>(n));
                    if (n < 0) uv_read_stop(s);
                  });
  }
}

void Child::kill(int signum) {
  if (!m_exited) uv_process_kill(m_process, signum);
}

Child::~Child() {
  if (!m_exited) {
    uv_process_kill(m_process, SIGKILL);
    run_until(m_loop, [this] { return m_exited; }, 5000);
  }
  m_process->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(m_process), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
  if (m_pipe != nullptr) {
    m_pipe->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(m_pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  }
  uv_run(m_loop, UV_RUN_NOWAIT);
}

int start_sample_app(uv_loop_t* loop, std::unique_ptr<Child>& child, std::uint32_t ready_after_ms) {
  child = std::make_unique<Child>(loop,
      std::vector<std::string>{std::string(TIDE_BIN_DIR) + "/tide-sample-app", "--address", "127.0.0.1",
                               "--port", "0", "--ready-after-ms", std::to_string(ready_after_ms), "--no-notify"},
      std::map<std::string, std::string>{}, true);
  int port = 0;
  run_until(loop, [&] {
    const auto& out = child->output();
    const auto at = out.find("listening on 127.0.0.1:");
    if (at == std::string::npos) return false;
    const auto nl = out.find('\n', at);
    if (nl == std::string::npos) return false;
    port = std::stoi(out.substr(at + 23, nl - at - 23));
    return true;
  }, 5000);
  return port;
}

int http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string rq = "GET " + path + " HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)::send(fd, rq.data(), rq.size(), MSG_NOSIGNAL);
  char buf[64] = {};
  const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  if (n < 12) return -1;
  return std::atoi(buf + 9);
}

std::filesystem::path make_temp_dir() {
  char tmpl[] = "/tmp/tide-agent-test-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) throw std::runtime_error("mkdtemp");
  return dir;
}

}  // namespace tide::test
