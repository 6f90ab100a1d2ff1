// Integration tests of LoadBalancer::sample_traffic against the real HAProxy
// the LoadBalancer starts (embedded, in a temp dir, on a free port) and small
// HTTP servers on threads of this process whose answers the test chooses.
// Only the waiting is bounded by deadlines; HAProxy updates a server's
// counters when a stream ends, so the figures are polled until they settle.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>

#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/load_balancer.hpp"
#include "coordinator/io/haproxy/runtime_client.hpp"
#include "tests/integration/coordinator/haproxy/fixtures.hpp"

using namespace tide::haproxy;
using namespace tide::haproxy::fixtures;
namespace fs = std::filesystem;

namespace {

using Sample = tl::expected<std::vector<ServerTraffic>, std::string>;

// An HTTP/1.1 server on its own thread, one connection at a time. Every
// answer carries "Connection: close" and a body naming the server; every
// fail_every-th request (0: none) gets 500, the others 200, each after
// delay_ms. It listens on 127.0.0.1 at a port the kernel picks.
class ScriptedServer {
 public:
  ScriptedServer(std::string name, unsigned fail_every, unsigned delay_ms)
      : m_name(std::move(name)), m_fail_every(fail_every), m_delay_ms(delay_ms) {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_listen >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(m_listen, 64) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    m_port = ntohs(a.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    m_stop = true;
    m_thread.join();
    ::close(m_listen);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return m_port; }
  [[nodiscard]] const std::string& name() const { return m_name; }
  [[nodiscard]] unsigned answered() const { return m_answered; }
  [[nodiscard]] unsigned failed() const { return m_failed; }

 private:
  void serve() {
    while (!m_stop) {
      pollfd p{m_listen, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      if (in.find("\r\n\r\n") != std::string::npos) {
        const unsigned n = ++m_answered;
        const bool fail = m_fail_every != 0 && n % m_fail_every == 0;
        if (fail) ++m_failed;
        if (m_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(m_delay_ms));
        const std::string body = m_name + "\n";
        const std::string out =
            std::string(fail ? "HTTP/1.1 500 Internal Server Error" : "HTTP/1.1 200 OK") +
            "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n" + body;
        std::size_t sent = 0;
        while (sent < out.size()) {
          const ssize_t w = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
          if (w <= 0) break;
          sent += static_cast<std::size_t>(w);
        }
      }
      ::close(fd);
    }
  }

  std::string m_name;
  unsigned m_fail_every;
  unsigned m_delay_ms;
  int m_listen = -1;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<unsigned> m_answered{0};
  std::atomic<unsigned> m_failed{0};
  std::thread m_thread;
};

// A state directory, a frontend port and a loop for LoadBalancers.
struct LbRig {
  fs::path dir;
  std::uint16_t fe_port = 0;
  uv_loop_t loop{};
  std::unique_ptr<LoadBalancer> lb;

  LbRig() {
    char tmpl[] = "/tmp/tide-lb-traffic-XXXXXX";
    dir = ::mkdtemp(tmpl);
    fe_port = free_port();
    uv_loop_init(&loop);
  }

  ~LbRig() {
    stop();
    stop_leftover_haproxy();
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // An HAProxy of this rig that a LoadBalancer left serving (a test that
  // failed between the two coordinators) is stopped, so that none outlives
  // the test: the pid in the rig's pid file, if it runs our configuration.
  void stop_leftover_haproxy() const {
    std::ifstream in(dir / "haproxy.pid");
    int pid = 0;
    if (!(in >> pid) || pid <= 1) return;
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string args;
    char chunk[4096];
    while (cmdline.read(chunk, sizeof chunk) || cmdline.gcount() > 0) {
      args.append(chunk, static_cast<std::size_t>(cmdline.gcount()));
    }
    if (args.find((dir / "haproxy.cfg").string()) == std::string::npos) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 250 && ::kill(pid, 0) == 0; ++i) {
      ::waitpid(pid, nullptr, WNOHANG);  // it may be our child: reap it
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, WNOHANG);
  }

  // An embedded HAProxy with backend "web" (4 slots) behind fe_port, plus `extra`.
  LoadBalancer::Options options(std::vector<BackendSpec> extra = {},
                                bool keep_running = false) const {
    LoadBalancer::Options o;
    o.embedded = true;
    o.socket_path = (dir / "admin.sock").string();
    o.pid_file = (dir / "haproxy.pid").string();
    o.config_path = (dir / "haproxy.cfg").string();
    o.backends.push_back(BackendSpec{.name = "web", .bind_port = fe_port, .slot_count = 4});
    for (auto& b : extra) o.backends.push_back(std::move(b));
    o.keep_running_on_stop = keep_running;
    o.digest = [](std::string_view text) {
      return std::to_string(std::hash<std::string_view>{}(text));
    };
    return o;
  }

  // Starts a LoadBalancer and waits until HAProxy answers a sample.
  void start(LoadBalancer::Options o) {
    lb = std::make_unique<LoadBalancer>(&loop, std::move(o));
    auto started = lb->start();
    REQUIRE(started);
    if (!lb->adopted()) {
      lb->fleet_restored();
      wait_sample_ok();
    }
  }

  // Stops the LoadBalancer (HAProxy too, unless it keeps running) and destroys it.
  void stop() {
    if (!lb) return;
    bool stopped = false;
    lb->stop([&] { stopped = true; });
    run_loop_until(
        &loop, [&] { return stopped; }, 8000);
    lb.reset();
  }

  template <typename Pred>
  bool run_until(Pred pred, std::uint64_t timeout_ms) {
    return run_loop_until(&loop, pred, timeout_ms);
  }

  Sample sample() {
    std::optional<Sample> out;
    lb->sample_traffic([&](Sample s) { out = std::move(s); });
    REQUIRE(run_until([&] { return out.has_value(); }, 10000));
    return std::move(*out);
  }

  // Samples until one succeeds (HAProxy's socket appears shortly after spawn).
  std::vector<ServerTraffic> wait_sample_ok() {
    for (int i = 0; i < 500; ++i) {
      if (auto s = sample()) return *s;
      run_until([] { return false; }, 20);
    }
    FAIL("HAProxy's runtime API did not answer a sample");
    return {};
  }

  // Samples until pred(sample) holds, at most timeout_ms; returns the last successful sample.
  std::vector<ServerTraffic> sample_until(
      const std::function<bool(const std::vector<ServerTraffic>&)>& pred,
      std::uint64_t timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<ServerTraffic> last;
    while (true) {
      if (auto s = sample()) {
        last = std::move(*s);
        if (pred(last)) return last;
      }
      if (std::chrono::steady_clock::now() >= deadline) return last;
      run_until([] { return false; }, 20);
    }
  }

  void register_instance(const std::string& id, std::uint16_t port) {
    std::optional<tl::expected<OpResult, DriverError>> out;
    lb->driver().register_instance("web", id, "127.0.0.1", port,
                                   [&](auto r) { out = std::move(r); });
    REQUIRE(run_until([&] { return out.has_value(); }, 10000));
    REQUIRE(*out);
  }

  void remove_instance(const std::string& id) {
    std::optional<tl::expected<OpResult, DriverError>> out;
    lb->driver().remove_instance("web", id, [&](auto r) { out = std::move(r); });
    REQUIRE(run_until([&] { return out.has_value(); }, 10000));
    REQUIRE(*out);
  }
};

const ServerTraffic* find(const std::vector<ServerTraffic>& traffic, const std::string& id) {
  for (const auto& t : traffic) {
    if (t.instance_id == id) return &t;
  }
  return nullptr;
}

std::uint64_t requests_of(const std::vector<ServerTraffic>& traffic, const std::string& id) {
  const ServerTraffic* t = find(traffic, id);
  return t == nullptr ? 0 : t->requests_total;
}

std::uint64_t errors_5xx_of(const std::vector<ServerTraffic>& traffic, const std::string& id) {
  const ServerTraffic* t = find(traffic, id);
  return t == nullptr ? 0 : t->responses_5xx;
}

}  // namespace

TEST_CASE("sample_traffic reports each instance's requests and 5xx answers as sent through HAProxy",
          "[haproxy][integration][traffic]") {
  LbRig rig;
  rig.start(rig.options());
  ScriptedServer healthy("healthy", 0, 0);
  ScriptedServer flaky("flaky", 3, 30);  // every third answer is a 500, each after 30 ms
  ScriptedServer gone("gone", 0, 0);
  rig.register_instance("i-healthy", healthy.port());  // s1
  rig.register_instance("i-flaky", flaky.port());      // s2
  rig.register_instance("i-gone", gone.port());        // s3, removed below: it holds no slot then
  rig.remove_instance("i-gone");

  // The consumer's way: differences between two samples.
  const std::vector<ServerTraffic> before = rig.wait_sample_ok();
  REQUIRE(before.size() == 2);
  CHECK(before[0].instance_id == "i-healthy");
  CHECK(before[1].instance_id == "i-flaky");
  CHECK(find(before, "i-gone") == nullptr);

  constexpr int kRequests = 60;
  std::map<std::string, int> answered;  // server name → answers seen by the client
  std::map<std::string, int> got_500;
  int other = 0;
  for (int i = 0; i < kRequests; ++i) {
    const HttpResult r = http_get(rig.fe_port, "/");
    const std::string server = r.body.empty() ? "" : r.body.substr(0, r.body.size() - 1);
    if ((r.status == 200 || r.status == 500) && (server == "healthy" || server == "flaky")) {
      ++answered[server];
      if (r.status == 500) ++got_500[server];
    } else {
      ++other;
    }
  }
  REQUIRE(other == 0);
  REQUIRE(answered["healthy"] + answered["flaky"] == kRequests);
  REQUIRE(got_500["flaky"] > 0);
  CHECK(got_500["healthy"] == 0);
  CHECK(static_cast<unsigned>(got_500["flaky"]) == flaky.failed());
  CHECK(gone.answered() == 0);

  const auto settled = [&](const std::vector<ServerTraffic>& now) {
    return requests_of(now, "i-healthy") - requests_of(before, "i-healthy") +
                   requests_of(now, "i-flaky") - requests_of(before, "i-flaky") ==
               static_cast<std::uint64_t>(kRequests) &&
           errors_5xx_of(now, "i-flaky") - errors_5xx_of(before, "i-flaky") ==
               static_cast<std::uint64_t>(got_500["flaky"]) &&
           std::all_of(now.begin(), now.end(),
                       [](const ServerTraffic& t) { return t.current_sessions == 0; });
  };
  const std::vector<ServerTraffic> after = rig.sample_until(settled, 10000);
  REQUIRE(settled(after));
  REQUIRE(after.size() == 2);
  for (const ServerTraffic& t : after) {
    const ServerTraffic* b = find(before, t.instance_id);
    REQUIRE(b != nullptr);
    const std::string server = t.instance_id == "i-healthy" ? "healthy" : "flaky";
    INFO(t.instance_id);
    CHECK(t.backend == "web");
    CHECK(t.requests_total - b->requests_total == static_cast<std::uint64_t>(answered[server]));
    CHECK(t.responses_5xx - b->responses_5xx == static_cast<std::uint64_t>(got_500[server]));
    // One stream per request; nothing failed on the way to the servers.
    CHECK(t.sessions_total - b->sessions_total == t.requests_total - b->requests_total);
    CHECK(t.connection_errors == b->connection_errors);
    CHECK(t.response_errors == b->response_errors);
    CHECK(t.queue == 0);
    CHECK(t.mean_total_ms >= t.mean_response_ms);
    CHECK(t.mean_queue_ms >= 0.0);
  }
  // Only the flaky server takes 30 ms to answer; HAProxy's averages show it.
  CHECK(find(after, "i-flaky")->mean_response_ms >= 20.0);
  CHECK(find(after, "i-healthy")->mean_response_ms < find(after, "i-flaky")->mean_response_ms);

  // An instance that got no request yet reports 0; slots without an instance
  // are left out, and HAProxy shows no request for them either.
  ScriptedServer late("late", 0, 0);
  rig.register_instance("i-late", late.port());  // the lowest free slot: s3
  const std::vector<ServerTraffic> with_late = rig.wait_sample_ok();
  REQUIRE(with_late.size() == 3);
  const ServerTraffic* l = find(with_late, "i-late");
  REQUIRE(l != nullptr);
  CHECK(l->requests_total == 0);
  CHECK(l->responses_5xx == 0);
  CHECK(l->sessions_total == 0);
  RuntimeClient client(&rig.loop,
                       RuntimeClient::Options{(rig.dir / "admin.sock").string(), 2000, 8});
  std::optional<RuntimeClient::Answer> raw;
  client.send("show stat web 4 -1", [&](RuntimeClient::Answer a) { raw = std::move(a); });
  REQUIRE(rig.run_until([&] { return raw.has_value(); }, 5000));
  REQUIRE(*raw);
  auto rows = parse_show_stat(**raw);
  REQUIRE(rows);
  bool seen_s4 = false;
  for (const StatRow& row : *rows) {
    if (row.server == "s4") {
      seen_s4 = true;
      CHECK(row.req_tot == 0);
      CHECK(row.stot == 0);
    }
  }
  CHECK(seen_s4);
  client.close();
}

TEST_CASE(
    "sample_traffic answers exactly once: empty without HAProxy, an error when it cannot be "
    "reached",
    "[haproxy][integration][traffic]") {
  LbRig rig;
  // Every answer comes from the loop, once, never inside the call.
  const auto sample_once = [&](LoadBalancer& lb) {
    int calls = 0;
    bool inside = true;
    bool answered_inside = false;
    std::optional<Sample> out;
    lb.sample_traffic([&](Sample s) {
      ++calls;
      answered_inside = answered_inside || inside;
      out = std::move(s);
    });
    inside = false;
    REQUIRE(rig.run_until([&] { return out.has_value(); }, 10000));
    rig.run_until([] { return false; }, 100);
    CHECK(calls == 1);
    CHECK_FALSE(answered_inside);
    return std::move(*out);
  };

  // Not started, or no backends: nothing to sample.
  {
    LoadBalancer not_started(&rig.loop, rig.options());
    auto s = sample_once(not_started);
    REQUIRE(s);
    CHECK(s->empty());
    auto none = rig.options();
    none.backends.clear();
    LoadBalancer no_backends(&rig.loop, none);
    auto e = sample_once(no_backends);
    REQUIRE(e);
    CHECK(e->empty());
  }
  // An HAProxy that is not running behind the socket.
  {
    auto o = rig.options();
    o.embedded = false;
    o.socket_path = (rig.dir / "nobody.sock").string();
    LoadBalancer unreachable(&rig.loop, o);
    REQUIRE(unreachable.start());
    auto s = sample_once(unreachable);
    REQUIRE_FALSE(s);
    CHECK(s.error().find("show stat") != std::string::npos);
    bool stopped = false;
    unreachable.stop([&] { stopped = true; });
    CHECK(stopped);
  }
  // A running one, then stopped.
  rig.start(rig.options());
  auto ok = sample_once(*rig.lb);
  REQUIRE(ok);
  CHECK(ok->empty());  // no instance holds a slot yet
  bool stopped = false;
  rig.lb->stop([&] { stopped = true; });
  REQUIRE(rig.run_until([&] { return stopped; }, 8000));
  auto after_stop = sample_once(*rig.lb);
  REQUIRE_FALSE(after_stop);
  CHECK(after_stop.error().find("stopped") != std::string::npos);
  rig.lb.reset();
}

TEST_CASE("a sample that overlaps a reload is refused; afterwards the new worker counts from zero",
          "[haproxy][integration][traffic]") {
  LbRig rig;
  ScriptedServer server("a", 0, 0);
  // The first coordinator's HAProxy serves i-a and is left running at stop.
  rig.start(rig.options({}, true));
  rig.register_instance("i-a", server.port());
  constexpr int kBefore = 10;
  for (int i = 0; i < kBefore; ++i) REQUIRE(http_get(rig.fe_port, "/").status == 200);
  auto counted = rig.sample_until(
      [](const std::vector<ServerTraffic>& t) { return requests_of(t, "i-a") == kBefore; }, 10000);
  REQUIRE(requests_of(counted, "i-a") == kBefore);
  rig.stop();

  // The next one runs a newer configuration (one more backend): it adopts the
  // running HAProxy and its member, then reloads it once the fleet is restored.
  auto o =
      rig.options({BackendSpec{.name = "spare", .bind_port = free_port(), .slot_count = 2}}, false);
  rig.lb = std::make_unique<LoadBalancer>(&rig.loop, o);
  auto started = rig.lb->start();
  INFO((started ? std::string() : started.error()));
  REQUIRE(started);
  REQUIRE(rig.lb->adopted());
  std::optional<tl::expected<std::vector<AdoptedMember>, DriverError>> adopted;
  rig.lb->driver().adopt_members(
      [&](const std::string& backend, const std::string& address,
          std::uint16_t port) -> std::optional<std::string> {
        if (backend == "web" && address == "127.0.0.1" && port == server.port())
          return std::string("i-a");
        return std::nullopt;
      },
      [&](auto r) { adopted = std::move(r); });
  REQUIRE(rig.run_until([&] { return adopted.has_value(); }, 5000));
  INFO((*adopted ? std::string() : (*adopted).error().detail));
  REQUIRE(*adopted);
  REQUIRE((*adopted)->size() == 1);

  // The reload starts on the answer to the command queued before this
  // sample's, so this sample's answer arrives after it has begun.
  rig.lb->fleet_restored();
  auto during = rig.sample();
  REQUIRE_FALSE(during);
  CHECK(during.error().find("reload") != std::string::npos);

  // Once the new worker answers, samples succeed again; its counters started
  // from zero and count what it serves.
  auto fresh = rig.sample_until(
      [](const std::vector<ServerTraffic>& t) { return find(t, "i-a") != nullptr; }, 15000);
  REQUIRE(find(fresh, "i-a") != nullptr);
  CHECK(fresh.size() == 1);  // "spare" has no instance
  CHECK(requests_of(fresh, "i-a") < static_cast<std::uint64_t>(kBefore));
  const std::uint64_t base = requests_of(fresh, "i-a");
  constexpr int kAfter = 5;
  for (int i = 0; i < kAfter; ++i) REQUIRE(http_get(rig.fe_port, "/").status == 200);
  auto later = rig.sample_until(
      [&](const std::vector<ServerTraffic>& t) { return requests_of(t, "i-a") == base + kAfter; },
      10000);
  CHECK(requests_of(later, "i-a") == base + kAfter);
}
