// HttpApi: the admin API's HTTP server (cpp-httplib) whose handlers run on
// the coordinator's libuv loop thread.
//
// cpp-httplib serves connections on its own threads. Those threads never
// touch fleet state: each request is queued to the loop (uv_async) and the
// HTTP thread waits for the loop's answer. So every handler sees and changes
// state on the one thread that owns it, as DESIGN.md requires.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>
#include <uv.h>

namespace httplib {
class Server;
}

namespace tide::coordinator {

struct ApiRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;       // query string
  std::vector<std::string> path_params;            // the route's captures, in order
  std::optional<nlohmann::json> body;              // parsed JSON body, if any
};

struct ApiResponse {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::string content_type = "application/json";
  std::string text;  // sent instead of body when not empty (e.g. /metrics)
};

// Helpers for handlers: {"error": message, "field": field}.
[[nodiscard]] ApiResponse api_error(int status, std::string message, std::string field = "");

// Request bodies nest at most this deep (arrays and objects); deeper ones are
// refused with 400 before they are parsed.
inline constexpr std::size_t kMaxJsonDepth = 64;
// The offset of the first bracket that opens level max_depth + 1, if any.
// Brackets inside strings do not count.
[[nodiscard]] std::optional<std::size_t> json_nesting_over(std::string_view text, std::size_t max_depth);

struct HttpApiConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 7401;  // 0 = pick a free port (tests)
  std::string token;          // bearer token; empty = no authentication
  std::chrono::milliseconds handler_timeout{10'000};
  std::size_t max_body_bytes = 1 << 20;
};

class HttpApi {
 public:
  using Handler = std::function<ApiResponse(const ApiRequest&)>;

  HttpApi(uv_loop_t* loop, HttpApiConfig config);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // `pattern` is a regular expression over the path, e.g. R"(/v1/groups/([^/]+))".
  // Register every route before start().
  void route(const std::string& method, const std::string& pattern, Handler handler);
  // Routes without authentication (/healthz, /metrics).
  void public_route(const std::string& method, const std::string& pattern, Handler handler);

  // Binds and starts serving; returns the bound port.
  [[nodiscard]] tl::expected<std::uint16_t, std::string> start();
  // Stops serving and joins the HTTP thread. Requests still queued are
  // answered 503. Idempotent.
  void stop();

 private:
  struct Job;
  void add(const std::string& method, const std::string& pattern, Handler handler, bool authenticated);
  void run_queued();  // on the loop thread

  uv_loop_t* m_loop;
  HttpApiConfig m_config;
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;
  uv_async_t* m_async = nullptr;
  std::mutex m_mutex;
  std::deque<std::shared_ptr<Job>> m_queue;
  bool m_stopping = false;
};

}  // namespace tide::coordinator
