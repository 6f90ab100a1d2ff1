// Unit tests of the traffic figures: `show stat` fields of HAProxy 2.6 read by
// header name, and their mapping onto the instances that hold slots.
#include "coordinator/io/haproxy/traffic.hpp"

#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "coordinator/io/haproxy/runtime_text.hpp"

using namespace tide::haproxy;

namespace {

// The header line of `show stat -1 4 -1` from Debian's HAProxy 2.6.12, as
// captured from the real binary (129 fields, a trailing comma).
const std::string kHeader26 =
    "# "
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,"
    "status,weight,"
    "act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,"
    "rate_lim,rate_max,"
    "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_"
    "other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,"
    "last_chk,last_agt,"
    "qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_"
    "rise,check_fall,"
    "check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,"
    "conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,"
    "ctime_max,"
    "rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_"
    "server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_"
    "headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_"
    "errors,"
    "h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_"
    "backend_open_streams,"
    "h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_"
    "connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n";

// Two rows captured with that header: a slot left in maintenance at the
// placeholder address (lastsess is -1, a field tide does not read), and a slot
// that served 5 answers of 200 and 2 of 404.
const std::string kMaintRow =
    "web,s1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,,,0,,,1,3,1,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,"
    ",,,-1,,,0,0,0,0,"
    ",,,,,,,,,,,127.0.0.1:1,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,"
    ",,,,,\n";
const std::string kServedRow =
    "web,s2,0,0,0,1,,7,729,3405,,0,,0,0,0,0,no "
    "check,1,1,0,,,0,,,1,3,2,,7,,2,7,,7,,,,0,5,0,2,0,0,,,,7,0,0,,,,,0,,,0,"
    "1,1,2,,,,,,,,,,,,127.0.0.1:18766,,http,,,,,,,,0,7,0,,,0,,0,1,4,10,0,0,0,0,1,1,,,,-,0,0,0,,,,,,"
    ",,,,,,,,,,,,,,,,\n";

// A row for kHeader26 with the given fields set by name and every other one empty.
std::string row_with(const std::map<std::string, std::string>& fields) {
  std::vector<std::string> names;
  std::string header = kHeader26.substr(2, kHeader26.size() - 3);
  for (std::size_t at = 0;;) {
    const auto comma = header.find(',', at);
    names.push_back(header.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  std::string row;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) row += ',';
    if (auto it = fields.find(names[i]); it != fields.end()) row += it->second;
  }
  return row + "\n";
}

StatRow stat_row(const std::string& proxy, const std::string& server, std::uint64_t base) {
  StatRow r;
  r.proxy = proxy;
  r.server = server;
  r.status = "UP";
  r.qcur = base + 1;
  r.scur = base + 2;
  r.stot = base + 3;
  r.req_tot = base + 4;
  r.rate = base + 5;
  r.hrsp_5xx = base + 6;
  r.econ = base + 7;
  r.eresp = base + 8;
  r.qtime_ms = base + 9;
  r.rtime_ms = base + 10;
  r.ttime_ms = base + 11;
  return r;
}

}  // namespace

TEST_CASE("parse_show_stat reads HAProxy 2.6's per-server fields from a real answer",
          "[haproxy][parse][traffic]") {
  auto rows = parse_show_stat(kHeader26 + kMaintRow + kServedRow);
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  const StatRow& maint = (*rows)[0];
  CHECK(maint.server == "s1");
  CHECK(maint.status == "MAINT");
  CHECK(maint.addr == "127.0.0.1:1");
  CHECK(maint.stot == 0);
  CHECK(maint.req_tot == 0);

  StatRow want;
  want.proxy = "web";
  want.server = "s2";
  want.status = "no check";
  want.addr = "127.0.0.1:18766";
  want.stot = 7;
  want.req_tot = 7;
  want.rate = 7;
  want.hrsp_2xx = 5;
  want.hrsp_4xx = 2;
  want.ctime_ms = 1;
  want.rtime_ms = 1;
  want.ttime_ms = 2;
  CHECK((*rows)[1] == want);
}

TEST_CASE("parse_show_stat finds every traffic field by its name", "[haproxy][parse][traffic]") {
  // Distinct values, so a field read from the wrong column shows.
  const std::string row = row_with(
      {{"pxname", "web"}, {"svname", "s3"},  {"status", "UP"},  {"addr", "10.0.0.3:8080"},
       {"qcur", "1"},     {"scur", "2"},     {"stot", "3"},     {"req_tot", "4"},
       {"rate", "5"},     {"hrsp_2xx", "6"}, {"hrsp_4xx", "7"}, {"hrsp_5xx", "8"},
       {"econ", "9"},     {"eresp", "10"},   {"wretr", "11"},   {"wredis", "12"},
       {"qtime", "13"},   {"ctime", "14"},   {"rtime", "15"},   {"ttime", "18446744073709551615"}});
  auto rows = parse_show_stat(kHeader26 + row);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  const StatRow& r = (*rows)[0];
  CHECK(r.proxy == "web");
  CHECK(r.server == "s3");
  CHECK(r.addr == "10.0.0.3:8080");
  CHECK(r.qcur == 1);
  CHECK(r.scur == 2);
  CHECK(r.stot == 3);
  CHECK(r.req_tot == 4);
  CHECK(r.rate == 5);
  CHECK(r.hrsp_2xx == 6);
  CHECK(r.hrsp_4xx == 7);
  CHECK(r.hrsp_5xx == 8);
  CHECK(r.econ == 9);
  CHECK(r.eresp == 10);
  CHECK(r.wretr == 11);
  CHECK(r.wredis == 12);
  CHECK(r.qtime_ms == 13);
  CHECK(r.ctime_ms == 14);
  CHECK(r.rtime_ms == 15);
  CHECK(r.ttime_ms == 18446744073709551615ULL);
}

TEST_CASE("empty and absent traffic fields read as 0", "[haproxy][parse][traffic]") {
  // A TCP-mode server leaves req_tot and the hrsp_* fields empty.
  auto tcp = parse_show_stat(kHeader26 + row_with({{"pxname", "db"},
                                                   {"svname", "s1"},
                                                   {"status", "UP"},
                                                   {"qcur", "0"},
                                                   {"scur", "1"},
                                                   {"stot", "9"}}));
  REQUIRE(tcp);
  REQUIRE(tcp->size() == 1);
  CHECK((*tcp)[0].stot == 9);
  CHECK((*tcp)[0].req_tot == 0);
  CHECK((*tcp)[0].hrsp_5xx == 0);
  CHECK((*tcp)[0].rtime_ms == 0);
  // A header without the traffic fields (an older HAProxy, or a trimmed capture).
  auto old = parse_show_stat("# pxname,svname,qcur,scur,status,\nbe,s1,0,4,UP,\n");
  REQUIRE(old);
  CHECK((*old)[0].scur == 4);
  CHECK((*old)[0].req_tot == 0);
  CHECK((*old)[0].ttime_ms == 0);
}

TEST_CASE("a malformed traffic field is an error naming the row and the field",
          "[haproxy][parse][traffic]") {
  for (const std::string bad : {"x", "-1", "1.5", " 3", "3 ", "18446744073709551616"}) {
    auto r = parse_show_stat(
        kHeader26 + kMaintRow +
        row_with({{"pxname", "web"}, {"svname", "s2"}, {"status", "UP"}, {"hrsp_5xx", bad}}));
    INFO("hrsp_5xx = '" << bad << "'");
    REQUIRE_FALSE(r);
    CHECK(r.error().find("row 3") != std::string::npos);
    CHECK(r.error().find("hrsp_5xx") != std::string::npos);
  }
  auto r = parse_show_stat(
      kHeader26 +
      row_with({{"pxname", "web"}, {"svname", "s2"}, {"status", "UP"}, {"rtime", "abc"}}));
  REQUIRE_FALSE(r);
  CHECK(r.error().find("rtime") != std::string::npos);
  // A row cut short before a field the header names.
  auto short_row = parse_show_stat(kHeader26 + "web,s1,0,0,0,0,,0,0,0\n");
  REQUIRE_FALSE(short_row);
  CHECK(short_row.error().find("short row 2") != std::string::npos);
}

TEST_CASE("member_traffic names each held slot's figures by its instance", "[haproxy][traffic]") {
  std::vector<StatRow> rows = {stat_row("web", "s1", 100), stat_row("web", "s2", 200),
                               stat_row("web", "s3", 300), stat_row("web", "BACKEND", 900),
                               stat_row("other", "s1", 400)};
  std::vector<BackendMembers> backends = {
      BackendMembers{"web", "s", {{"i-b", 3}, {"i-a", 1}}},  // s2 holds no instance
      BackendMembers{"api", "s", {{"i-c", 1}}},              // HAProxy has no such backend
  };
  auto traffic = member_traffic(rows, backends);
  REQUIRE(traffic.size() == 2);
  ServerTraffic a;
  a.backend = "web";
  a.instance_id = "i-a";
  a.queue = 101;
  a.current_sessions = 102;
  a.sessions_total = 103;
  a.requests_total = 104;
  a.session_rate = 105;
  a.responses_5xx = 106;
  a.connection_errors = 107;
  a.response_errors = 108;
  a.mean_queue_ms = 109.0;
  a.mean_response_ms = 110.0;
  a.mean_total_ms = 111.0;
  CHECK(traffic[0] == a);  // ordered by slot: s1 before s3
  CHECK(traffic[1].instance_id == "i-b");
  CHECK(traffic[1].requests_total == 304);
  CHECK(traffic[1].responses_5xx == 306);

  // Another prefix: the rows are found by the slot's name.
  auto app =
      member_traffic({stat_row("web", "app2", 0)}, {BackendMembers{"web", "app", {{"i-x", 2}}}});
  REQUIRE(app.size() == 1);
  CHECK(app[0].instance_id == "i-x");
  CHECK(member_traffic(rows, {}).empty());
  CHECK(member_traffic({}, backends).empty());
}
