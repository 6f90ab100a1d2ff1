// Unit tests of the pure parts of the HAProxy driver: runtime API parsers,
// config generator and the slot membership reconcile.
#include <catch2/catch.hpp>

#include <algorithm>

#include "coordinator/io/haproxy/config.hpp"
#include "coordinator/io/haproxy/membership.hpp"
#include "coordinator/io/haproxy/runtime_text.hpp"

using namespace tide::haproxy;

namespace {

// Captured from Debian's HAProxy 2.6.12: slot 1 registered and running, the
// rest as the config leaves them (maint, placeholder address).
const char* kServersState =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
    "srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 be 1 s1 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 9999 - 0 0 - - 0\n"
    "3 be 2 s2 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 1 - 0 0 - - 0\n"
    "3 be 3 s3 127.0.0.1 2 12 1 1 1 1 0 0 8 0 0 0 - 8080 - 0 0 - - 0\n";

ServerState slot(const std::string& name, const std::string& addr, std::uint16_t port, std::uint32_t op,
                 std::uint32_t admin) {
  ServerState s;
  s.backend = "be";
  s.server = name;
  s.address = addr;
  s.port = port;
  s.op_state = op;
  s.admin_state = admin;
  return s;
}

// Every slot as HAProxy has it right after a (re)start.
std::vector<ServerState> fresh(std::uint32_t n) {
  std::vector<ServerState> v;
  for (std::uint32_t i = 1; i <= n; ++i) v.push_back(slot("s" + std::to_string(i), "127.0.0.1", 1, 0, 5));
  return v;
}

std::vector<std::string> rendered(const BackendPlan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.commands) out.push_back(c.render());
  return out;
}

}  // namespace

TEST_CASE("parse_servers_state reads columns by name", "[haproxy][parse]") {
  auto r = parse_servers_state(kServersState);
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  auto want = slot("s1", "127.0.0.1", 9999, 2, 4);
  want.server_id = 1;
  CHECK((*r)[0] == want);
  CHECK((*r)[0].in_rotation());
  CHECK((*r)[1].in_maint());
  CHECK((*r)[2].draining());
  CHECK_FALSE((*r)[2].in_rotation());
  CHECK((*r)[2].port == 8080);
}

TEST_CASE("parse_servers_state rejects bad input with a reason", "[haproxy][parse]") {
  CHECK_FALSE(parse_servers_state(""));
  CHECK_FALSE(parse_servers_state("Can't find backend.\n"));
  CHECK_FALSE(parse_servers_state("1\nno header\n"));
  CHECK_FALSE(parse_servers_state("1\n# be_id be_name\n3 be\n"));  // columns missing
  std::string bad = kServersState;
  bad.replace(bad.find("9999"), 4, "99x9");
  auto r = parse_servers_state(bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().find("bad number") != std::string::npos);
  bad = kServersState;
  bad += "3 be 4 s4\n";  // truncated row
  CHECK_FALSE(parse_servers_state(bad));
}

TEST_CASE("parse_show_stat finds scur, qcur and status by name", "[haproxy][parse]") {
  // Columns reordered on purpose: the parser must not depend on positions.
  const char* csv =
      "# svname,pxname,status,scur,qcur,addr,\n"
      "s1,be,UP,3,1,127.0.0.2:80,\n"
      "s2,be,MAINT,0,,127.0.0.1:1,\n"
      "BACKEND,be,UP,3,1,,\n";
  auto r = parse_show_stat(csv);
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  CHECK((*r)[0] == StatRow{"be", "s1", 1, 3, "UP", "127.0.0.2:80"});
  CHECK((*r)[1].qcur == 0);
  CHECK((*r)[1].status == "MAINT");
  CHECK_FALSE(parse_show_stat("No such proxy.\n"));
  CHECK_FALSE(parse_show_stat("# pxname,svname,scur\nbe,s1,1\n"));  // no qcur/status
  CHECK_FALSE(parse_show_stat("# pxname,svname,qcur,scur,status\nbe,s1,x,1,UP\n"));
}

TEST_CASE("error answers are told from success answers", "[haproxy][parse]") {
  CHECK_FALSE(is_error_answer("set server be/s1 state ready", ""));
  CHECK_FALSE(is_error_answer("set server be/s1 state ready", "\n"));
  CHECK(is_error_answer("set server be/s9 state ready", "No such server.\n"));
  CHECK_FALSE(is_error_answer("set server be/s1 addr 1.2.3.4 port 80",
                              "IP changed from '127.0.0.1' to '1.2.3.4', port changed from '1' to '80' by 'stats socket command'\n"));
  CHECK_FALSE(is_error_answer("set server be/s1 addr 127.0.0.1 port 80",
                              "no need to change the addr, port changed from '1' to '80' by 'stats socket command'\n"));
  CHECK(is_error_answer("set server be/s1 addr x port 80", "Invalid addr 'x' by 'stats socket command'\n"));
}

TEST_CASE("render_config declares slots, the admin socket and the retry policy", "[haproxy][config]") {
  ConfigSpec spec;
  spec.stats_socket = "/tmp/x/admin.sock";
  spec.backends.push_back(BackendSpec{.name = "web", .bind_port = 8080, .slot_count = 16});
  auto c = render_config(spec);
  REQUIRE(c);
  CHECK(c->find("stats socket /tmp/x/admin.sock mode 600 level admin expose-fd listeners") != std::string::npos);
  CHECK(c->find("server-template s 1-16 127.0.0.1:1 disabled\n") != std::string::npos);
  CHECK(c->find("retry-on conn-failure empty-response") != std::string::npos);
  CHECK(c->find("option redispatch") != std::string::npos);
  CHECK(c->find("bind 127.0.0.1:8080") != std::string::npos);
  CHECK(c->find("check") == c->find("check inter"));  // no health checks by default

  spec.backends[0].health_check = true;
  c = render_config(spec);
  REQUIRE(c);
  CHECK(c->find("option httpchk GET /ready") != std::string::npos);
  CHECK(c->find("disabled check inter 2000ms rise 2 fall 3") != std::string::npos);
}

TEST_CASE("render_config declares slots in use one by one, the others as the template would", "[haproxy][config]") {
  ConfigSpec spec;
  spec.stats_socket = "/tmp/x/admin.sock";
  spec.backends.push_back(BackendSpec{.name = "web", .bind_port = 8080, .slot_count = 4});
  spec.backends[0].slots_in_use = {SlotSpec{3, "127.0.1.7", 9000, true}, SlotSpec{1, "127.0.1.8", 9001, false}};
  auto c = render_config(spec);
  REQUIRE(c);
  CHECK(c->find("server-template") == std::string::npos);
  CHECK(c->find("  server s1 127.0.1.8:9001 disabled\n"
                "  server s2 127.0.0.1:1 disabled\n"
                "  server s3 127.0.1.7:9000\n"
                "  server s4 127.0.0.1:1 disabled\n") != std::string::npos);

  spec.backends[0].slots_in_use = {SlotSpec{5, "127.0.1.7", 9000, true}};
  CHECK(render_config(spec).error().find("slot 5 is outside 1..4") != std::string::npos);
  spec.backends[0].slots_in_use = {SlotSpec{2, "127.0.1.7", 9000, true}, SlotSpec{2, "127.0.1.9", 9000, true}};
  CHECK(render_config(spec).error().find("slot 2 is in use twice") != std::string::npos);
  spec.backends[0].slots_in_use = {SlotSpec{2, "127.0.1.7 x", 9000, true}};
  CHECK(render_config(spec).error().find("bad address") != std::string::npos);
  spec.backends[0].slots_in_use = {SlotSpec{2, "127.0.1.7", 0, true}};
  CHECK(!render_config(spec));
}

TEST_CASE("render_config refuses bad specs with a clear error", "[haproxy][config]") {
  ConfigSpec ok;
  ok.stats_socket = "/tmp/a.sock";
  ok.backends.push_back(BackendSpec{.name = "web", .bind_port = 8080});
  REQUIRE(render_config(ok));
  auto bad = ok;
  bad.backends[0].balance = "source";
  CHECK(render_config(bad).error().find("not dynamic") != std::string::npos);
  bad = ok;
  bad.backends[0].name = "we b";
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.backends.push_back(ok.backends[0]);
  CHECK(render_config(bad).error().find("twice") != std::string::npos);
  bad = ok;
  bad.backends[0].bind_port = 0;
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.stats_socket = "/tmp/a b.sock";
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.backends[0].slot_count = 0;
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.backends.clear();
  CHECK_FALSE(render_config(bad));
}

TEST_CASE("render_config writes shared frontends with path routes", "[haproxy][config][frontends]") {
  ConfigSpec spec;
  spec.stats_socket = "/tmp/x/admin.sock";
  spec.backends.push_back(BackendSpec{.name = "business", .bind_port = 0, .slot_count = 4});
  spec.backends.push_back(BackendSpec{.name = "session", .bind_port = 0, .slot_count = 4});
  spec.backends.push_back(BackendSpec{.name = "admin", .bind_port = 9000, .slot_count = 2});
  spec.frontends.push_back(FrontendSpec{.name = "mini_program", .bind_port = 18000, .default_backend = "business",
                                        .routes = {RouteSpec{"/session", "session"}, RouteSpec{"/s2/", "session"}}});
  auto c = render_config(spec);
  REQUIRE(c);
  const auto fe = c->find("frontend mini_program\n  bind 127.0.0.1:18000\n"
                          "  use_backend session if { path_beg /session }\n"
                          "  use_backend session if { path_beg /s2/ }\n"
                          "  default_backend business\n");
  CHECK(fe != std::string::npos);
  // Backends without a port have no frontend of their own; the others keep theirs.
  CHECK(c->find("frontend fe_business") == std::string::npos);
  CHECK(c->find("frontend fe_session") == std::string::npos);
  CHECK(c->find("frontend fe_admin\n  bind 127.0.0.1:9000\n  default_backend admin\n") != std::string::npos);
  CHECK(c->find("backend business\n") != std::string::npos);
  CHECK(c->find("backend session\n") != std::string::npos);

  // Routes only, no default: unmatched requests get HAProxy's 503.
  spec.frontends[0].default_backend.clear();
  spec.frontends[0].routes.push_back(RouteSpec{"/", "business"});
  c = render_config(spec);
  REQUIRE(c);
  CHECK(c->find("default_backend business") == std::string::npos);
}

TEST_CASE("render_config refuses bad shared frontends", "[haproxy][config][frontends]") {
  ConfigSpec ok;
  ok.stats_socket = "/tmp/a.sock";
  ok.backends.push_back(BackendSpec{.name = "business", .bind_port = 0});
  ok.backends.push_back(BackendSpec{.name = "session", .bind_port = 0});
  ok.frontends.push_back(FrontendSpec{.name = "fe", .bind_port = 18000, .default_backend = "business",
                                      .routes = {RouteSpec{"/session", "session"}}});
  REQUIRE(render_config(ok));
  auto bad = ok;
  bad.frontends[0].routes[0].backend = "sessions";
  CHECK(render_config(bad).error().find("backend 'sessions' is not a declared backend") != std::string::npos);
  bad = ok;
  bad.frontends[0].default_backend = "nope";
  CHECK(render_config(bad).error().find("default_backend 'nope'") != std::string::npos);
  bad = ok;
  bad.frontends[0].routes[0].path_prefix = "session";
  CHECK(render_config(bad).error().find("must start with '/'") != std::string::npos);
  bad = ok;
  bad.frontends[0].routes[0].path_prefix = "/a }";
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.frontends[0].bind_port = 0;
  CHECK_FALSE(render_config(bad));
  bad = ok;
  bad.frontends.push_back(ok.frontends[0]);
  CHECK(render_config(bad).error().find("twice") != std::string::npos);
  bad = ok;
  bad.frontends[0].default_backend.clear();
  bad.frontends[0].routes.clear();
  CHECK(render_config(bad).error().find("default_backend or at least one route") != std::string::npos);
  bad = ok;
  bad.frontends[0].routes.clear();  // session: no port and nothing routes to it
  CHECK(render_config(bad).error().find("backend 'session': bind_port") != std::string::npos);
  bad = ok;
  bad.backends[1].bind_port = 18000;  // the same address as the shared frontend
  CHECK(render_config(bad).error().find("bound twice") != std::string::npos);
}

TEST_CASE("slot names and free slots", "[haproxy][membership]") {
  CHECK(slot_index("s7", "s", 64) == 7u);
  CHECK_FALSE(slot_index("s0", "s", 64));
  CHECK_FALSE(slot_index("s07", "s", 64));
  CHECK_FALSE(slot_index("s65", "s", 64));
  CHECK_FALSE(slot_index("x7", "s", 64));
  CHECK_FALSE(slot_index("s", "s", 64));
  CHECK(slot_name("app", 3) == "app3");
  CHECK(choose_free_slot(3, {1, 3}) == 2u);
  CHECK_FALSE(choose_free_slot(2, {1, 2}));
}

TEST_CASE("after an HAProxy restart every member is put back in its slot", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 4;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}, {"i-b", {"127.0.1.2", 8080, true}}};
  in.assignment = {{"i-a", 3}, {"i-b", 1}};
  in.actual = fresh(4);
  auto plan = plan_backend(in);
  CHECK(plan.assignment == in.assignment);  // the same slots as before
  CHECK(rendered(plan) == std::vector<std::string>{
                              "set server be/s3 addr 127.0.1.1 port 8080",
                              "set server be/s3 state ready",
                              "set server be/s1 addr 127.0.1.2 port 8080",
                              "set server be/s1 state ready",
                          });
  CHECK(plan.unplaced.empty());
}

TEST_CASE("a correct backend needs no command", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 3;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}};
  in.assignment = {{"i-a", 2}};
  in.actual = fresh(3);
  in.actual[1] = slot("s2", "127.0.1.1", 8080, 2, 4);
  auto plan = plan_backend(in);
  CHECK(plan.commands.empty());
  CHECK(plan.notes.empty());
  CHECK(plan.assignment == in.assignment);
}

TEST_CASE("tide restarted: slots holding members are adopted, not moved", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 4;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}, {"i-b", {"127.0.1.2", 9000, true}}};
  in.actual = fresh(4);
  in.actual[3] = slot("s4", "127.0.1.1", 8080, 2, 4);
  auto plan = plan_backend(in);
  CHECK(plan.assignment.at("i-a") == 4u);
  CHECK(plan.assignment.at("i-b") == 1u);  // lowest free slot
  CHECK(rendered(plan) == std::vector<std::string>{"set server be/s1 addr 127.0.1.2 port 9000",
                                                   "set server be/s1 state ready"});
}

TEST_CASE("manual changes are repaired", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 4;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}, {"i-b", {"127.0.1.2", 8080, true}},
               {"i-c", {"127.0.1.3", 8080, false}}};
  in.assignment = {{"i-a", 1}, {"i-b", 2}, {"i-c", 3}};
  in.actual = fresh(4);
  in.actual[0] = slot("s1", "127.0.1.1", 8080, 0, 5);   // someone set it to maint
  in.actual[1] = slot("s2", "127.0.9.9", 8080, 2, 4);   // someone re-pointed it (and it serves)
  in.actual[2] = slot("s3", "127.0.1.3", 8080, 2, 4);   // should be out of rotation
  in.actual[3] = slot("s4", "10.0.0.1", 80, 2, 12);     // draining an unknown address
  auto plan = plan_backend(in);
  CHECK(plan.assignment == in.assignment);
  CHECK(rendered(plan) == std::vector<std::string>{
                              "set server be/s1 state ready",
                              "set server be/s2 state maint",
                              "set server be/s2 addr 127.0.1.2 port 8080",
                              "set server be/s2 state ready",
                              "set server be/s3 state maint",
                              "set server be/s4 state maint",
                          });
  CHECK(plan.notes.size() == 4);
}

TEST_CASE("a serving slot with an unknown address is not reused for a new member", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 2;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}};
  in.actual = fresh(2);
  in.actual[0] = slot("s1", "127.0.9.9", 80, 2, 4);
  auto plan = plan_backend(in);
  CHECK(plan.assignment.at("i-a") == 2u);
  CHECK(rendered(plan) == std::vector<std::string>{"set server be/s2 addr 127.0.1.1 port 8080",
                                                   "set server be/s2 state ready",
                                                   "set server be/s1 state maint"});
}

TEST_CASE("more members than slots: the rest are reported unplaced", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 1;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}, {"i-b", {"127.0.1.2", 8080, true}}};
  in.actual = fresh(1);
  auto plan = plan_backend(in);
  CHECK(plan.assignment.size() == 1);
  CHECK(plan.unplaced == std::vector<std::string>{"i-b"});
}

TEST_CASE("busy slots are left to their operation", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 3;
  in.wanted = {{"i-a", {"127.0.1.1", 8080, true}}, {"i-new", {"127.0.1.5", 8080, true}}};
  in.assignment = {{"i-a", 1}, {"i-gone", 2}};
  in.actual = fresh(3);
  in.actual[1] = slot("s2", "127.0.1.2", 8080, 2, 12);  // being drained by drain_instance
  in.busy_slots = {1, 2};                               // i-a's register is in flight too
  auto plan = plan_backend(in);
  CHECK(plan.assignment.at("i-a") == 1u);
  CHECK(plan.assignment.at("i-new") == 3u);
  CHECK(rendered(plan) == std::vector<std::string>{"set server be/s3 addr 127.0.1.5 port 8080",
                                                   "set server be/s3 state ready"});
}

TEST_CASE("slots of other backends and foreign servers are ignored", "[haproxy][membership]") {
  BackendPlanInput in;
  in.backend = "be";
  in.slot_count = 2;
  in.actual = fresh(2);
  auto other = slot("s1", "10.0.0.1", 80, 2, 0);
  other.backend = "other";
  in.actual.push_back(other);
  in.actual.push_back(slot("static1", "10.0.0.2", 80, 2, 0));
  auto plan = plan_backend(in);
  CHECK(plan.commands.empty());
}
