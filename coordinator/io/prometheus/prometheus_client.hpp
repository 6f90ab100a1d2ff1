// PrometheusClient: asks a Prometheus server for the value of a PromQL
// instant query (GET <url>/api/v1/query?query=...) over the loop's HTTP
// client, with the configured bearer token and time-out. What an answer
// means is the core's (coordinator/core/metric_query.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <tl/expected.hpp>
#include <uv.h>

#include "coordinator/io/http/http_client.hpp"

namespace tide::prometheus {

struct PrometheusClientConfig {
  std::string url;           // base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept)
  std::string bearer_token;  // empty: no Authorization header
  std::uint32_t timeout_ms = 2'000;
};

class PrometheusClient {
 public:
  using Callback = std::function<void(tl::expected<double, std::string>)>;

  PrometheusClient(uv_loop_t* loop, PrometheusClientConfig config);

  // Runs `query` now; `done` gets its value or why there is none (time-out,
  // connection refused, an answer that is not one number). Called on the
  // loop, once; never after close().
  void query(const std::string& query, Callback done);

  [[nodiscard]] std::size_t in_flight() const { return m_http.in_flight(); }
  void close() { m_http.close(); }

  // <url>/api/v1/query?query=<query, percent-encoded>.
  [[nodiscard]] static std::string query_url(const std::string& base_url, const std::string& query);

 private:
  PrometheusClientConfig m_config;
  http::HttpClient m_http;
};

}  // namespace tide::prometheus
