// Prometheus as a metric source, end to end with real parts: a small exporter
// (python3's http.server) whose figures the test sets, a real Prometheus
// server (Debian's package) scraping it every second, a real HAProxy in front
// of Prometheus that refuses requests without the bearer token, and a
// coordinator whose alarm policies read PromQL queries through it.
#include <signal.h>

#include <fstream>
#include <thread>

#include "fleet_fixture.hpp"

using namespace tide::system_test;

namespace {

// Serves <dir>/metrics.txt at /metrics, read afresh at each scrape.
constexpr const char* kExporter = R"(import http.server, sys
path = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
)";

constexpr const char* kToken = "s3cret-token-for-tide";

class PrometheusStack {
 public:
  explicit PrometheusStack(const std::filesystem::path& dir)
      : m_dir(dir / "prometheus"),
        m_exporter_port(free_port()),
        m_prometheus_port(free_port()),
        m_proxy_port(free_port()) {
    std::filesystem::create_directories(m_dir);
    set_queue_depth(1, 1);
    std::ofstream(m_dir / "exporter.py") << kExporter;
    std::ofstream(m_dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                            << "scrape_configs:\n  - job_name: app\n    static_configs:\n"
                                            << "      - targets: ['127.0.0.1:" << m_exporter_port << "']\n";
    // The token check: HAProxy answers 401 unless the bearer token is right.
    std::ofstream(m_dir / "proxy.cfg")
        << "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n"
        << "  timeout server 10s\nfrontend fe\n  bind 127.0.0.1:" << m_proxy_port << "\n"
        << "  http-request deny deny_status 401 unless { req.hdr(authorization) -m str \"Bearer " << kToken
        << "\" }\n  default_backend prometheus\nbackend prometheus\n  server p 127.0.0.1:" << m_prometheus_port
        << "\n";
    std::ofstream(m_dir / "token") << kToken << "\n";
    m_exporter = std::make_unique<Child>(
        std::vector<std::string>{"python3", (m_dir / "exporter.py").string(), std::to_string(m_exporter_port),
                                 (m_dir / "metrics.txt").string()},
        m_dir / "exporter.log");
    m_proxy = std::make_unique<Child>(
        std::vector<std::string>{"haproxy", "-db", "-f", (m_dir / "proxy.cfg").string()}, m_dir / "proxy.log");
    start_prometheus();
  }

  ~PrometheusStack() {
    for (auto* child : {&m_prometheus, &m_proxy, &m_exporter}) {
      if (!*child) continue;
      (*child)->signal(SIGTERM);
      (void)(*child)->wait(10s);
      child->reset();
    }
  }

  // Two series, shard a and b, of tide_test_queue_depth.
  void set_queue_depth(int a, int b) const {
    const auto temp = m_dir / "metrics.txt.new";
    std::ofstream(temp) << "# TYPE tide_test_queue_depth gauge\n"
                        << "tide_test_queue_depth{shard=\"a\"} " << a << "\n"
                        << "tide_test_queue_depth{shard=\"b\"} " << b << "\n";
    std::filesystem::rename(temp, m_dir / "metrics.txt");
  }

  // Until Prometheus answers the query with sum == `expected` (it has
  // scraped the exporter's latest figures).
  [[nodiscard]] bool prometheus_sees(int expected, std::chrono::milliseconds timeout) const {
    return eventually(timeout, [&] {
      const auto answer = http("GET", "http://127.0.0.1:" + std::to_string(m_prometheus_port),
                               "/api/v1/query?query=sum(tide_test_queue_depth)");
      if (answer.status != 200 || !answer.body.is_object()) return false;
      const json result = answer.body["data"]["result"];
      return result.is_array() && result.size() == 1 && result[0]["value"][1] == std::to_string(expected);
    });
  }

  void start_prometheus() {
    m_prometheus = std::make_unique<Child>(
        std::vector<std::string>{"prometheus", "--config.file=" + (m_dir / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (m_dir / "tsdb").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(m_prometheus_port)},
        m_dir / "prometheus.log");
    REQUIRE(eventually(60s, [&] {
      return http("GET", "http://127.0.0.1:" + std::to_string(m_prometheus_port), "/-/ready").status == 200;
    }));
  }

  void stop_prometheus() {
    m_prometheus->signal(SIGTERM);
    REQUIRE(m_prometheus->wait(30s).has_value());
    m_prometheus.reset();
  }

  // What the coordinator's configuration says: Prometheus behind the proxy.
  [[nodiscard]] std::string coordinator_config(const std::string& token_file) const {
    return "prometheus:\n  url: http://127.0.0.1:" + std::to_string(m_proxy_port) + "/\n  bearer_token_file: " +
           token_file + "\n  timeout_ms: 2000\n  interval_ms: 1000\n";
  }
  [[nodiscard]] std::filesystem::path token_file() const { return m_dir / "token"; }
  [[nodiscard]] std::string proxy() const { return "http://127.0.0.1:" + std::to_string(m_proxy_port); }

 private:
  std::filesystem::path m_dir;
  std::uint16_t m_exporter_port;
  std::uint16_t m_prometheus_port;
  std::uint16_t m_proxy_port;
  std::unique_ptr<Child> m_exporter;
  std::unique_ptr<Child> m_proxy;
  std::unique_ptr<Child> m_prometheus;
};

json put_query_alarm(const Fleet& fleet, const std::string& name, const std::string& query, const std::string& comparison,
                     double threshold, int exact) {
  const auto put = fleet.api("PUT", "/v1/groups/web/policies/" + name,
                             json{{"type", "alarm"}, {"metric", "queue_depth"}, {"query", query},
                                  {"comparison", comparison}, {"threshold", threshold}, {"period_ms", 2000},
                                  {"evaluation_periods", 2}, {"adjustment_type", "exact"}, {"adjustment", exact},
                                  {"cooldown_ms", 0}});
  INFO(put.text);
  REQUIRE(put.status == 201);
  return put.body;
}

json metric_entry(const Fleet& fleet, const std::string& query) {
  const json metrics = fleet.api("GET", "/v1/groups/web/metrics").body["metrics"];
  if (!metrics.is_array()) return nullptr;
  for (const auto& entry : metrics) {
    if (entry.value("query", "") == query) return entry;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("alarm policies on Prometheus queries scale out and in; a bad query or a dead Prometheus never scales",
          "[system]") {
  Fleet fleet;
  PrometheusStack prometheus(fleet.dir());
  // The proxy refuses a request without the token: the coordinator's must carry it.
  CHECK(eventually(10s, [&] { return http("GET", prometheus.proxy(), "/api/v1/query?query=1").status == 401; }));

  // Without prometheus.url a query policy is refused, naming the field.
  fleet.start_coordinator();
  fleet.create_group(1, 300, json{{"min", 1}, {"max", 4}});
  const auto refused = fleet.api("PUT", "/v1/groups/web/policies/q",
                                 json{{"type", "alarm"}, {"metric", "queue_depth"}, {"query", "sum(x)"},
                                      {"comparison", ">"}, {"threshold", 1}, {"adjustment", 1}});
  CHECK(refused.status == 400);
  CHECK(refused.body.value("field", "") == "query");
  fleet.stop_coordinator();

  fleet.add_config(prometheus.coordinator_config(prometheus.token_file().string()));
  fleet.start_coordinator();
  REQUIRE(st::eventually(30s, [&] { return fleet.in_service() == 1; }));
  // Prometheus has scraped the exporter: the queries have data from the start.
  REQUIRE(prometheus.prometheus_sees(2, 30s));
  const std::string sum = "sum(tide_test_queue_depth)";
  // Two series: not one number. Its policy must never act.
  const std::string both = "tide_test_queue_depth";
  put_query_alarm(fleet, "queue-high", sum, ">", 10, 3);
  put_query_alarm(fleet, "queue-low", sum, "<", 2, 1);
  put_query_alarm(fleet, "two-series", both, ">", 0, 4);

  // The bad query: one failed metric_query activity saying why, no scaling.
  REQUIRE(st::eventually(20s, [&] { return !fleet.activity("metric_query", "two-series").is_null(); }));
  const json failed = fleet.activity("metric_query", "two-series");
  INFO(failed.dump());
  CHECK(failed["status"] == "failed");
  CHECK_THAT(failed["cause"].get<std::string>(), Catch::Contains("2 series"));
  const json bad_entry = metric_entry(fleet, both);
  INFO(bad_entry.dump());
  CHECK(bad_entry["source"] == "prometheus");
  CHECK_THAT(bad_entry.value("note", ""), Catch::Contains("query failing"));

  // The queue grows: sum 50 > 10 for two 2 s periods -> exactly 3.
  prometheus.set_queue_depth(20, 30);
  REQUIRE(prometheus.prometheus_sees(50, 30s));
  REQUIRE(st::eventually(30s, [&] { return !fleet.activity("scale_out", "queue-high").is_null(); }));
  const json scale_out = fleet.activity("scale_out", "queue-high");
  INFO(scale_out.dump());
  CHECK_THAT(scale_out["cause"].get<std::string>(), Catch::Contains("queue_depth"));
  CHECK(fleet.group()["desired"] == 3);
  const json entry = metric_entry(fleet, sum);
  INFO(entry.dump());
  CHECK(entry["name"] == "queue_depth");
  CHECK(entry["source"] == "prometheus");
  CHECK(entry["average"].get<double>() > 10.0);
  CHECK(entry["note"].is_null());
  // tidectl shows where the metric comes from.
  const auto table = fleet.tidectl({"group", "metrics", "web"});
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.output, Catch::Contains("queue_depth") && Catch::Contains("prometheus"));

  // Prometheus goes away, then the queue empties: missing data, no scale-in.
  prometheus.stop_prometheus();
  prometheus.set_queue_depth(0, 0);
  REQUIRE(st::eventually(20s, [&] {
    const json note = fleet.activity("metric_query", "queue-high");
    return !note.is_null() && note["status"] == "failed";
  }));
  std::this_thread::sleep_for(8s);  // four periods: a scale-in would have come by now
  CHECK(fleet.group()["desired"] == 3);
  CHECK(fleet.activity("scale_in", "queue-low").is_null());

  // Back: the query works again (noted), the empty queue scales in to 1.
  prometheus.start_prometheus();
  REQUIRE(st::eventually(60s, [&] {
    const json note = fleet.activity("metric_query", "queue-high");
    return !note.is_null() && note["status"] == "successful";
  }));
  CHECK_THAT(fleet.activity("metric_query", "queue-high")["cause"].get<std::string>(), Catch::Contains("works again"));
  REQUIRE(st::eventually(60s, [&] { return fleet.group()["desired"] == 1; }));
  CHECK_FALSE(fleet.activity("scale_in", "queue-low").is_null());
  // The two-series policy never moved the group.
  CHECK(fleet.activity("scale_out", "two-series").is_null());

  const std::string metrics = fleet.api("GET", "/metrics").text;
  CHECK_THAT(metrics, Catch::Contains("tide_metric_queries_total") && Catch::Contains("tide_metric_query_failures_total"));
}
