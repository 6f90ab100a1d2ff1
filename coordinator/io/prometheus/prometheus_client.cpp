#include "coordinator/io/prometheus/prometheus_client.hpp"

#include <utility>

#include "coordinator/core/metric_query.hpp"

namespace tide::prometheus {
namespace {

// An instant query's answer is one sample; a megabyte means a query that
// returns a huge vector, which is refused anyway.
constexpr std::size_t kMaxAnswerBytes = 1 << 20;

// RFC 3986 unreserved characters stay, everything else is %XX.
std::string percent_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
                       c == '.' || c == '_' || c == '~';
    if (plain) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

}  // namespace

PrometheusClient::PrometheusClient(uv_loop_t* loop, PrometheusClientConfig config)
    : m_config(std::move(config)), m_http(loop, "tide-coordinator") {}

std::string PrometheusClient::query_url(const std::string& base_url, const std::string& query) {
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/api/v1/query?query=" + percent_encode(query);
}

void PrometheusClient::query(const std::string& query, Callback done) {
  http::HttpRequest request;
  request.url = query_url(m_config.url, query);
  request.headers = {"Accept: application/json"};
  if (!m_config.bearer_token.empty()) request.headers.push_back("Authorization: Bearer " + m_config.bearer_token);
  request.timeout_ms = m_config.timeout_ms;
  request.connect_timeout_ms = m_config.timeout_ms;
  request.max_body_bytes = kMaxAnswerBytes;
  m_http.request(std::move(request), [done = std::move(done)](http::HttpResponse response) {
    if (!response.answered) {
      done(tl::make_unexpected(response.timed_out ? "no answer within the time-out (" + response.error + ")"
                                                  : "cannot ask Prometheus: " + response.error));
      return;
    }
    if (response.status == 401 || response.status == 403) {
      done(tl::make_unexpected("HTTP " + std::to_string(response.status) +
                               ": Prometheus refused the credentials (prometheus.bearer_token_file)"));
      return;
    }
    done(coordinator::query_value(response.status, response.body));
  });
}

}  // namespace tide::prometheus
