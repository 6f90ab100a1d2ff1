// Integration tests of the HAProxy driver against a real HAProxy (started by
// the test from a generated config in a temp dir, on random free ports) and
// real tide-sample-app processes. Only the waiting is bounded by deadlines.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/io/haproxy/config.hpp"
#include "coordinator/io/haproxy/driver.hpp"
#include "coordinator/io/haproxy/runtime_client.hpp"
#include "coordinator/io/haproxy/supervisor.hpp"
#include "tests/integration/coordinator/haproxy/fixtures.hpp"

using namespace tide::haproxy;
using namespace tide::haproxy::fixtures;
namespace fs = std::filesystem;

namespace {

// HAProxy under a Supervisor, a RuntimeClient and a Driver on one loop.
struct Rig {
  fs::path dir;
  std::uint16_t fe_port = 0;
  uv_loop_t loop{};
  std::unique_ptr<RuntimeClient> client;
  std::unique_ptr<Supervisor> sup;
  std::unique_ptr<Driver> driver;
  int starts = 0;

  // shared: backends "web" and "session" without frontends of their own,
  // behind one frontend on fe_port that sends /session/* to "session".
  explicit Rig(std::uint32_t slots = 8, bool shared = false) {
    char tmpl[] = "/tmp/tide-haproxy-XXXXXX";
    dir = ::mkdtemp(tmpl);
    fe_port = free_port();
    ConfigSpec spec;
    spec.stats_socket = (dir / "admin.sock").string();
    spec.timeout_connect_ms = 500;
    Driver::Options driver_options{{{"web", "s", slots}}, 10, 5000};
    if (shared) {
      spec.backends.push_back(BackendSpec{.name = "web", .bind_port = 0, .slot_count = slots});
      spec.backends.push_back(BackendSpec{.name = "session", .bind_port = 0, .slot_count = slots});
      spec.frontends.push_back(FrontendSpec{.name = "mini_program", .bind_port = fe_port, .default_backend = "web",
                                            .routes = {RouteSpec{"/session", "session"}}});
      driver_options.backends.push_back({"session", "s", slots});
    } else {
      spec.backends.push_back(BackendSpec{.name = "web", .bind_port = fe_port, .slot_count = slots});
    }
    auto text = render_config(spec);
    REQUIRE(text);
    std::ofstream(dir / "haproxy.cfg") << *text;
    // HAProxy's own syntax check of the generated text, before running it.
    const std::string check = "haproxy -q -c -f " + (dir / "haproxy.cfg").string() + " >/dev/null 2>&1";
    REQUIRE(std::system(check.c_str()) == 0);
    uv_loop_init(&loop);
    client = std::make_unique<RuntimeClient>(&loop, RuntimeClient::Options{spec.stats_socket, 2000, 64});
    Supervisor::Options so;
    so.config_path = (dir / "haproxy.cfg").string();
    so.restart_backoff_initial_ms = 50;
    so.inherit_output = false;
    sup = std::make_unique<Supervisor>(&loop, so, Supervisor::Events{[this](int) { ++starts; }, nullptr, nullptr, nullptr});
    driver = std::make_unique<Driver>(&loop, *client, driver_options);
    auto ok = sup->start();
    REQUIRE(ok);
    wait_api();
  }

  ~Rig() {
    bool stopped = false;
    sup->stop([&] { stopped = true; });
    run_until([&] { return stopped; }, 6000);
    driver.reset();
    client->close();
    client.reset();
    sup.reset();
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // Runs the loop until pred() or the deadline; returns pred().
  template <typename Pred>
  bool run_until(Pred pred, std::uint64_t timeout_ms) {
    return run_loop_until(&loop, pred, timeout_ms);
  }

  RuntimeClient::Answer command(const std::string& c) {
    std::optional<RuntimeClient::Answer> out;
    client->send(c, [&](RuntimeClient::Answer a) { out = std::move(a); });
    REQUIRE(run_until([&] { return out.has_value(); }, 5000));
    return std::move(*out);
  }

  // Waits until HAProxy answers on its socket (it appears shortly after spawn).
  void wait_api() {
    for (int i = 0; i < 300; ++i) {
      if (command("show servers state web")) return;
      run_until([] { return false; }, 10);
    }
    FAIL("HAProxy's runtime API did not come up");
  }

  tl::expected<OpResult, DriverError> op(const std::function<void(Driver::OpCallback)>& start) {
    std::optional<tl::expected<OpResult, DriverError>> out;
    start([&](tl::expected<OpResult, DriverError> r) { out = std::move(r); });
    REQUIRE(run_until([&] { return out.has_value(); }, 10000));
    return std::move(*out);
  }

  tl::expected<ReconcileResult, DriverError> reconcile() {
    std::optional<tl::expected<ReconcileResult, DriverError>> out;
    driver->reconcile([&](tl::expected<ReconcileResult, DriverError> r) { out = std::move(r); });
    REQUIRE(run_until([&] { return out.has_value(); }, 5000));
    return std::move(*out);
  }

  ServerState slot_state(const std::string& server) {
    auto a = command("show servers state web");
    REQUIRE(a);
    auto st = parse_servers_state(*a);
    REQUIRE(st);
    for (auto& s : *st) {
      if (s.server == server) return s;
    }
    FAIL("no slot " << server);
    return {};
  }
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

TEST_CASE("a registered sample app serves through the frontend", "[haproxy][integration]") {
  Rig rig;
  SampleApp app("app-1");
  CHECK(http_get(rig.fe_port, "/").status == 503);  // no server in rotation yet

  auto r = rig.op([&](auto cb) { rig.driver->register_instance("web", "i-1", "127.0.0.1", app.port, cb); });
  REQUIRE(r);
  CHECK(r->slot == 1);
  CHECK(r->server == "s1");
  auto st = rig.slot_state("s1");
  CHECK(st.port == app.port);
  CHECK(st.in_rotation());
  auto got = http_get(rig.fe_port, "/");
  CHECK(got.status == 200);
  CHECK(got.body.find("app-1") != std::string::npos);

  // Removed at once (the instance is gone): maint, the slot is free, and a
  // reconcile does not bring it back.
  auto removed = rig.op([&](auto cb) { rig.driver->remove_instance("web", "i-1", cb); });
  REQUIRE(removed);
  CHECK(removed->slot == 1);
  CHECK(rig.slot_state("s1").in_maint());
  CHECK(http_get(rig.fe_port, "/").status == 503);
  CHECK(rig.driver->assignment("web").empty());
  auto rec = rig.reconcile();
  REQUIRE(rec);
  CHECK(rec->commands == 0);
  CHECK(rig.slot_state("s1").in_maint());
  // Removing what holds no slot succeeds and sends nothing.
  auto again = rig.op([&](auto cb) { rig.driver->remove_instance("web", "i-1", cb); });
  REQUIRE(again);
  CHECK(again->slot == 0);
  // Registered again: the lowest free slot.
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-1", "127.0.0.1", app.port, cb); }));
  CHECK(http_get(rig.fe_port, "/").status == 200);
}

TEST_CASE("an endpoint reused by a new instance leaves the old one's slot first", "[haproxy][integration]") {
  Rig rig;
  SampleApp app("app-1");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-old", "127.0.0.1", app.port, cb); }));
  CHECK(rig.slot_state("s1").in_rotation());
  // The provider gave the vanished i-old's address to i-new.
  auto r = rig.op([&](auto cb) { rig.driver->register_instance("web", "i-new", "127.0.0.1", app.port, cb); });
  REQUIRE(r);
  CHECK(r->slot == 2);
  CHECK(rig.slot_state("s1").in_maint());
  CHECK(rig.slot_state("s2").in_rotation());
  CHECK(!rig.driver->assignment("web").contains("i-old"));
  CHECK(!rig.driver->wanted("web").contains("i-old"));
  auto rec = rig.reconcile();
  REQUIRE(rec);
  CHECK(rec->commands == 0);
}

TEST_CASE("one shared frontend routes by path prefix to two backends", "[haproxy][integration][frontends]") {
  Rig rig(8, true);
  SampleApp business("business-1");
  SampleApp session("session-1");
  CHECK(http_get(rig.fe_port, "/").status == 503);
  CHECK(http_get(rig.fe_port, "/session/login").status == 503);

  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-b", "127.0.0.1", business.port, cb); }));
  auto got = http_get(rig.fe_port, "/orders");
  CHECK(got.status == 200);
  CHECK(got.body.find("business-1") != std::string::npos);
  CHECK(http_get(rig.fe_port, "/session/login").status == 503);  // its backend is still empty

  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("session", "i-s", "127.0.0.1", session.port, cb); }));
  for (int i = 0; i < 4; ++i) {
    got = http_get(rig.fe_port, "/session/login");
    CHECK(got.status == 200);
    CHECK(got.body.find("session-1") != std::string::npos);
    got = http_get(rig.fe_port, "/");
    CHECK(got.status == 200);
    CHECK(got.body.find("business-1") != std::string::npos);
  }
  // A prefix match is on the path's beginning only.
  got = http_get(rig.fe_port, "/api/session");
  CHECK(got.body.find("business-1") != std::string::npos);
}

TEST_CASE("drain waits for requests in flight, then maint frees the slot", "[haproxy][integration]") {
  Rig rig;
  SampleApp app("app-d");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-d", "127.0.0.1", app.port, cb); }));

  HttpResult slow;
  std::thread t([&] { slow = http_get(rig.fe_port, "/?delay_ms=400"); });
  // Let the request reach the server before draining.
  REQUIRE(rig.run_until([&] {
    auto a = rig.command("show stat web 4 -1");
    auto rows = a ? parse_show_stat(*a) : tl::make_unexpected(std::string("x"));
    return rows && std::any_of(rows->begin(), rows->end(), [](auto& row) { return row.server == "s1" && row.scur > 0; });
  }, 3000));
  auto r = rig.op([&](auto cb) { rig.driver->drain_instance("web", "i-d", 5000, cb); });
  t.join();
  REQUIRE(r);
  CHECK_FALSE(r->forced);
  CHECK(r->elapsed_us >= 200'000);  // it waited for the slow request
  CHECK(slow.status == 200);
  CHECK(rig.slot_state("s1").in_maint());
  CHECK(rig.driver->assignment("web").empty());
  CHECK(http_get(rig.fe_port, "/").status == 503);
}

TEST_CASE("a drain past its deadline shuts the sessions down", "[haproxy][integration]") {
  Rig rig;
  SampleApp app("app-t");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-t", "127.0.0.1", app.port, cb); }));
  HttpResult slow;
  std::thread t([&] { slow = http_get(rig.fe_port, "/?delay_ms=3000"); });
  REQUIRE(rig.run_until([&] {
    auto a = rig.command("show stat web 4 -1");
    auto rows = a ? parse_show_stat(*a) : tl::make_unexpected(std::string("x"));
    return rows && std::any_of(rows->begin(), rows->end(), [](auto& row) { return row.server == "s1" && row.scur > 0; });
  }, 3000));
  auto r = rig.op([&](auto cb) { rig.driver->drain_instance("web", "i-t", 200, cb); });
  t.join();
  REQUIRE(r);
  CHECK(r->forced);
  CHECK(r->elapsed_us < 2'000'000);
  CHECK(slow.status != 200);  // its session was cut
  CHECK(rig.slot_state("s1").in_maint());
}

TEST_CASE("after HAProxy is killed, the supervisor restarts it and reconcile restores membership",
          "[haproxy][integration]") {
  Rig rig;
  SampleApp a("app-a"), b("app-b");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-a", "127.0.0.1", a.port, cb); }));
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-b", "127.0.0.1", b.port, cb); }));
  const int old_pid = rig.sup->pid();
  REQUIRE(old_pid > 0);
  ::kill(old_pid, SIGKILL);
  REQUIRE(rig.run_until([&] { return rig.sup->pid() > 0 && rig.sup->pid() != old_pid; }, 5000));
  CHECK(rig.sup->restarts() >= 1);
  rig.wait_api();
  // A fresh HAProxy: every slot in maint at the placeholder address.
  CHECK(rig.slot_state("s1").in_maint());
  auto rec = rig.reconcile();
  REQUIRE(rec);
  CHECK(rec->commands == 4);  // addr + ready for two slots
  CHECK(rig.slot_state("s1").port == a.port);
  CHECK(rig.slot_state("s2").port == b.port);
  CHECK(rig.slot_state("s2").in_rotation());
  // Both serve again; a second reconcile has nothing to do.
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.insert(http_get(rig.fe_port, "/").body.substr(0, 16));
  CHECK(seen.size() == 2);
  auto again = rig.reconcile();
  REQUIRE(again);
  CHECK(again->commands == 0);

  // A manual change is repaired too.
  REQUIRE(rig.command("set server web/s1 state maint"));
  REQUIRE(rig.command("set server web/s3 addr 127.0.0.1 port 1"));
  REQUIRE(rig.command("set server web/s3 state ready"));
  auto fix = rig.reconcile();
  REQUIRE(fix);
  CHECK(fix->commands == 2);
  CHECK(rig.slot_state("s1").in_rotation());
  CHECK(rig.slot_state("s3").in_maint());
}

TEST_CASE("a new supervisor and driver adopt a running HAProxy and its members without a restart",
          "[haproxy][integration]") {
  Rig rig;
  SampleApp a("app-a"), b("app-b");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-a", "127.0.0.1", a.port, cb); }));
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-b", "127.0.0.1", b.port, cb); }));
  REQUIRE(rig.command("set server web/s2 state maint"));  // i-b's application is not ready
  const int pid = rig.sup->pid();
  REQUIRE(pid > 0);

  // The coordinator goes away and leaves HAProxy serving.
  rig.sup->release();
  rig.driver.reset();
  CHECK(::kill(pid, 0) == 0);
  CHECK(http_get(rig.fe_port, "/").status == 200);

  // The next one adopts it.
  Supervisor::Options so;
  so.config_path = (rig.dir / "haproxy.cfg").string();
  so.restart_backoff_initial_ms = 50;
  so.inherit_output = false;
  int starts = 0;
  rig.sup = std::make_unique<Supervisor>(&rig.loop, so,
                                         Supervisor::Events{[&](int) { ++starts; }, nullptr, nullptr, nullptr});
  CHECK(!rig.sup->adopt(999'999'999));  // no such process: a clear error
  REQUIRE(rig.sup->adopt(pid));
  CHECK(rig.sup->adopted());
  CHECK(rig.sup->pid() == pid);
  CHECK(!rig.sup->adopt(pid));  // already supervised

  rig.driver = std::make_unique<Driver>(&rig.loop, *rig.client, Driver::Options{{{"web", "s", 8}}, 10, 5000});
  auto resolve = [&](const std::string& backend, const std::string& address,
                     std::uint16_t port) -> std::optional<std::string> {
    if (backend != "web" || address != "127.0.0.1") return std::nullopt;
    if (port == a.port) return std::string("i-a");
    if (port == b.port) return std::string("i-b");
    return std::nullopt;
  };
  std::optional<tl::expected<std::vector<AdoptedMember>, DriverError>> adopted;
  rig.driver->adopt_members(resolve, [&](auto r) { adopted = std::move(r); });
  REQUIRE(rig.run_until([&] { return adopted.has_value(); }, 5000));
  REQUIRE(*adopted);
  REQUIRE((*adopted)->size() == 2);
  for (const AdoptedMember& m : **adopted) {
    CHECK(m.backend == "web");
    CHECK(m.slot == (m.instance_id == "i-a" ? 1U : 2U));
    CHECK(m.in_rotation == (m.instance_id == "i-a"));
  }
  CHECK(rig.driver->assignment("web").at("i-a") == 1);
  // What HAProxy has is what the new driver wants: the reconcile moves nothing.
  auto rec = rig.reconcile();
  REQUIRE(rec);
  CHECK(rec->commands == 0);
  CHECK(rig.slot_state("s1").in_rotation());
  // The adopted members are the driver's own: back into rotation, drained out.
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-b", "127.0.0.1", b.port, cb); }));
  CHECK(rig.slot_state("s2").in_rotation());
  REQUIRE(rig.op([&](auto cb) { rig.driver->drain_instance("web", "i-a", 2000, cb); }));
  CHECK(rig.slot_state("s1").in_maint());
  CHECK(http_get(rig.fe_port, "/").status == 200);
  CHECK(starts == 0);

  // An adopted HAProxy that dies is replaced like a child.
  ::kill(pid, SIGKILL);
  REQUIRE(rig.run_until([&] { return rig.sup->pid() > 0 && rig.sup->pid() != pid; }, 5000));
  CHECK(starts == 1);
  CHECK(!rig.sup->adopted());
}

TEST_CASE("bad commands and a missing socket give errors, not crashes", "[haproxy][integration]") {
  Rig rig;
  auto r = rig.command("set server web/s99 state ready");
  REQUIRE(r);  // the transport worked; the driver judges the text
  CHECK(is_error_answer("set server web/s99 state ready", *r));
  auto bad = rig.command("show stat; shutdown sessions server web/s1");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ApiError::Kind::BadCommand);
  CHECK(rig.command("no such command at all"));  // HAProxy answers with help text; the connection survives
  CHECK(rig.command("show servers state web"));

  auto e1 = rig.op([&](auto cb) { rig.driver->register_instance("web", "i-x", "not-an-ip", 80, cb); });
  REQUIRE_FALSE(e1);
  CHECK(e1.error().kind == DriverError::Kind::BadArgument);
  auto e2 = rig.op([&](auto cb) { rig.driver->register_instance("nope", "i-x", "127.0.0.1", 80, cb); });
  REQUIRE_FALSE(e2);
  CHECK(e2.error().kind == DriverError::Kind::UnknownBackend);
  auto e3 = rig.op([&](auto cb) { rig.driver->drain_instance("web", "i-unknown", 100, cb); });
  REQUIRE_FALSE(e3);
  CHECK(e3.error().kind == DriverError::Kind::UnknownInstance);

  // A socket that is gone.
  RuntimeClient lost(&rig.loop, RuntimeClient::Options{(rig.dir / "nothing.sock").string(), 500, 8});
  std::optional<RuntimeClient::Answer> out;
  lost.send("show info", [&](RuntimeClient::Answer a) { out = std::move(a); });
  REQUIRE(rig.run_until([&] { return out.has_value(); }, 3000));
  REQUIRE_FALSE(*out);
  CHECK(out->error().kind == ApiError::Kind::Connect);
  lost.close();

  // HAProxy stopped under a connected client: commands fail, then work again
  // once it is back.
  bool stopped = false;
  rig.sup->stop([&] { stopped = true; });
  REQUIRE(rig.run_until([&] { return stopped; }, 6000));
  auto down = rig.op([&](auto cb) { rig.driver->register_instance("web", "i-y", "127.0.0.1", 80, cb); });
  REQUIRE_FALSE(down);
  CHECK(down.error().kind == DriverError::Kind::Api);
  REQUIRE(rig.sup->start());
  rig.wait_api();
}

TEST_CASE("many rapid register and drain operations under load fail no request", "[haproxy][integration]") {
  Rig rig(4);
  SampleApp a("app-a"), b("app-b");
  REQUIRE(rig.op([&](auto cb) { rig.driver->register_instance("web", "i-a", "127.0.0.1", a.port, cb); }));

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread load([&] {
    while (!stop) {
      auto r = http_get(rig.fe_port, "/");
      (r.status == 200 ? ok : failed)++;
    }
  });

  std::vector<double> reg_ms, drain_ms;
  const int old_pid = rig.sup->pid();
  for (int i = 0; i < 100; ++i) {
    auto r = rig.op([&](auto cb) { rig.driver->register_instance("web", "i-b", "127.0.0.1", b.port, cb); });
    REQUIRE(r);
    reg_ms.push_back(static_cast<double>(r->elapsed_us) / 1000.0);
    auto d = rig.op([&](auto cb) { rig.driver->drain_instance("web", "i-b", 2000, cb); });
    REQUIRE(d);
    drain_ms.push_back(static_cast<double>(d->elapsed_us) / 1000.0);
  }
  stop = true;
  load.join();
  CHECK(rig.sup->pid() == old_pid);  // HAProxy never died
  CHECK(rig.sup->restarts() == 0);
  CHECK(failed == 0);
  CHECK(ok > 0);
  std::printf("haproxy driver latency (ms): register p50 %.3f p99 %.3f; drain (idle or short sessions) "
              "p50 %.3f p99 %.3f; requests through LB during churn: %d ok, %d failed\n",
              percentile(reg_ms, 0.5), percentile(reg_ms, 0.99), percentile(drain_ms, 0.5),
              percentile(drain_ms, 0.99), ok.load(), failed.load());

  // The same without the load: raw command latency of the two state changes.
  std::vector<double> ready_ms, drain_cmd_ms;
  for (int i = 0; i < 200; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(rig.command("set server web/s2 state ready"));
    auto t1 = std::chrono::steady_clock::now();
    REQUIRE(rig.command("set server web/s2 state drain"));
    auto t2 = std::chrono::steady_clock::now();
    ready_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    drain_cmd_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  REQUIRE(rig.command("set server web/s2 state maint"));
  std::printf("haproxy runtime command latency (ms): state ready p50 %.3f p99 %.3f; state drain p50 %.3f p99 %.3f\n",
              percentile(ready_ms, 0.5), percentile(ready_ms, 0.99), percentile(drain_cmd_ms, 0.5),
              percentile(drain_cmd_ms, 0.99));
  CHECK(rig.slot_state("s1").in_rotation());
}
