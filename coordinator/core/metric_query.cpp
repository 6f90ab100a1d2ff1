#include "coordinator/core/metric_query.hpp"

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace tide::coordinator {
namespace {

using nlohmann::json;

tl::unexpected<std::string> fail(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
}

// A sample is [<unix time>, "<value>"]; Prometheus writes the value as a
// string so that NaN and ±Inf survive JSON.
tl::expected<double, std::string> sample_value(const json& sample) {
  if (!sample.is_array() || sample.size() != 2 || !sample[1].is_string()) {
    return fail("the answer's sample is not [time, \"value\"]");
  }
  const std::string text = sample[1].get<std::string>();
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return fail("the value '" + text + "' is not a number");
  if (!std::isfinite(value)) return fail("the value is " + text + ", not a finite number");
  return value;
}

std::string shorten(std::string_view text) {
  constexpr std::size_t kMax = 200;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax)) + "...";
}

}  // namespace

tl::expected<double, std::string> query_value(long http_status, std::string_view body) {
  const json answer = json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    if (http_status != 200) return fail("HTTP " + std::to_string(http_status) + " (not a Prometheus API answer)");
    return fail("the answer is not JSON (is the URL a Prometheus server?)");
  }
  const std::string status = answer.value("status", "");
  if (status == "error") {
    const auto text = [&](const char* key) {
      return answer.contains(key) && answer[key].is_string() ? answer[key].get<std::string>() : std::string();
    };
    return fail("Prometheus: " + text("errorType") + ": " + shorten(text("error")));
  }
  if (status != "success" || http_status != 200) {
    return fail("HTTP " + std::to_string(http_status) + " with status '" + shorten(status) + "'");
  }
  if (!answer.contains("data") || !answer["data"].is_object()) return fail("the answer has no data");
  const json& data = answer["data"];
  const std::string type = data.value("resultType", "");
  if (!data.contains("result")) return fail("the answer has no result");
  const json& result = data["result"];
  if (type == "scalar") return sample_value(result);
  if (type == "vector") {
    if (!result.is_array()) return fail("the answer's vector is not a list");
    if (result.empty()) return fail("the query returned no series (nothing matched; is the exporter scraped?)");
    if (result.size() > 1) {
      return fail("the query returned " + std::to_string(result.size()) +
                  " series; it must return one: aggregate them (sum, avg, max ...)");
    }
    if (!result[0].is_object() || !result[0].contains("value")) return fail("the answer's series has no value");
    return sample_value(result[0]["value"]);
  }
  if (type == "matrix") return fail("the query returned a range vector; use an instant query (e.g. rate(x[1m]))");
  return fail("the query returned a " + (type.empty() ? std::string("result of no type") : type) +
              "; it must return a scalar or one series");
}

std::optional<QueryNote> QueryHealth::observe(const MetricQuery& query, std::string_view error, TimeMs now_ms) {
  State& state = m_states[{query.group, query.query}];
  state.error = std::string(error);
  const std::string subject = "Prometheus query of policy " + query.policies.front() + " (metric " + query.metric + ")";
  if (error.empty()) {
    if (!state.noted_ms) return std::nullopt;
    state.noted_ms.reset();
    state.noted_error.clear();
    return QueryNote{query.group, true, subject + " works again"};
  }
  const bool repeat = state.noted_ms && (error == state.noted_error || now_ms - *state.noted_ms < kRepeatMs);
  if (repeat) return std::nullopt;
  state.noted_ms = now_ms;
  state.noted_error = std::string(error);
  return QueryNote{query.group, false, subject + " failed: " + std::string(error) + "; its policies hold"};
}

void QueryHealth::keep_only(const std::vector<MetricQuery>& queries) {
  std::erase_if(m_states, [&](const auto& item) {
    for (const MetricQuery& q : queries) {
      if (q.group == item.first.first && q.query == item.first.second) return false;
    }
    return true;
  });
}

std::string_view QueryHealth::last_error(std::string_view group, std::string_view query) const {
  const auto it = m_states.find(std::pair{std::string(group), std::string(query)});
  return it == m_states.end() ? std::string_view() : std::string_view(it->second.error);
}

}  // namespace tide::coordinator
